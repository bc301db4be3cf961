"""The area tree in memory: provinces and wards from vietnam-provinces, plus local neighbourhoods.

Search ignores diacritics, case and word order and tolerates typos; location lookup finds the
neighbourhood whose polygon holds a point, or the nearest centroid within a radius.
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

EARTH_RADIUS_KM = 6371.0
Ring = tuple[tuple[float, float], ...]  # (longitude, latitude) pairs, as GeoJSON orders them

# Division words people type before a name; they carry no meaning for the search.
_TYPE_PREFIXES = (
    "thanh pho trung uong",
    "thanh pho",
    "thi tran",
    "thi xa",
    "dac khu",
    "to dan pho",
    "khu pho",
    "phuong",
    "tinh",
    "xa",
    "tp",
    "ap",
    "khom",
    "thon",
    "ban",
    "kp",
    "tdp",
    "p",
)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class AreaKind(StrEnum):
    """Levels of the area tree."""

    PROVINCE = "province"
    WARD = "ward"
    NEIGHBOURHOOD = "neighbourhood"


@dataclass(frozen=True, slots=True)
class Area:
    """One place people can subscribe to or report from."""

    code: str
    kind: AreaKind
    name: str
    parent: str | None
    province: str
    latitude: float | None = None
    longitude: float | None = None
    polygons: tuple[Ring, ...] = ()


@dataclass(frozen=True)
class Located:
    """The area found for a point, and how far its centre is (0 inside a polygon)."""

    area: Area | None
    distance_km: float | None


def fold(text: str) -> str:
    """Lower-case ASCII words: 'Phường Hoàn Kiếm' -> 'phuong hoan kiem'."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()


def _accented_words(text: str) -> list[str]:
    """Lower-case words with their accents, in one Unicode form."""
    return unicodedata.normalize("NFC", text).lower().split()


_SINGLE_TYPE_WORDS = ("phuong", "xa", "dac", "thi", "tinh", "khu", "ap", "khom", "thon", "to")


def _looks_like_type_word(token: str) -> bool:
    """A word within one or two typos of a division word."""
    return len(token) >= 3 and any(
        Levenshtein.distance(token, word) <= (1 if len(word) <= 4 else 2)
        for word in _SINGLE_TYPE_WORDS
    )


def strip_type_prefix(folded: str) -> str:
    """Drop leading division words ('phuong', 'xa', 'thanh pho' ...) from folded text."""
    changed = True
    while changed and folded:
        changed = False
        for prefix in _TYPE_PREFIXES:
            if folded == prefix:
                return folded
            if folded.startswith(prefix + " "):
                folded = folded[len(prefix) + 1 :]
                changed = True
                break
    return folded


def short_province_name(name: str) -> str:
    """'Thành phố Hà Nội' -> 'Hà Nội'."""
    for prefix in ("Thành phố ", "Tỉnh "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def point_in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Ray casting: whether a point lies inside a closed ring."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _province_keys(province: dict[str, Any]) -> set[str]:
    """Every way a deployment may name a province in TIPLINE_PROVINCES, folded."""
    number = int(province["code"])
    return {
        str(number),
        f"{number:02d}",
        f"p{number:02d}",
        fold(province["codename"]),
        fold(province["name"]),
        fold(short_province_name(province["name"])),
    }


class UnknownProvinceError(ValueError):
    """A configured province matches none in the catalogue."""


def _divisions_json() -> Path:
    """The package's nested-divisions file, found without importing the package's code."""
    spec = importlib.util.find_spec("vietnam_provinces")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the vietnam-provinces package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "nested-divisions.json"


def load_builtin(provinces: Sequence[str] = ()) -> list[Area]:
    """Provinces and wards from the vietnam-provinces package, limited to some provinces."""
    data: list[dict[str, Any]] = json.loads(_divisions_json().read_text("utf-8"))
    wanted = {fold(p) for p in provinces if p.strip()}
    known: set[str] = set()
    areas: list[Area] = []
    for province in data:
        keys = _province_keys(province)
        known |= keys
        if wanted and not keys & wanted:
            continue
        code = f"P{province['code']:02d}"
        name = short_province_name(province["name"])
        areas.append(Area(code, AreaKind.PROVINCE, name, None, code))
        areas.extend(
            Area(f"W{ward['code']:05d}", AreaKind.WARD, ward["name"], code, code)
            for ward in province["wards"]
        )
    unknown = wanted - known
    if unknown:
        raise UnknownProvinceError(", ".join(sorted(unknown)))
    return areas


class AreaCatalog:
    """Lookup, browsing, search and location over one deployment's areas."""

    def __init__(self, areas: Iterable[Area]) -> None:
        self._by_code: dict[str, Area] = {}
        self._children: dict[str | None, list[Area]] = defaultdict(list)
        for area in areas:
            self._by_code[area.code] = area
        for area in self._by_code.values():
            self._children[area.parent].append(area)
        for siblings in self._children.values():
            siblings.sort(key=lambda a: (a.kind != AreaKind.PROVINCE, fold(a.name)))
        self._build_index()

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Area | None:
        """An area by code."""
        return self._by_code.get(code)

    def provinces(self) -> list[Area]:
        """The deployment's provinces."""
        return list(self._children[None])

    def children(self, code: str) -> list[Area]:
        """Areas directly under one area."""
        return list(self._children.get(code, ()))

    def ancestors(self, code: str) -> list[str]:
        """The area's code and those of every area above it, nearest first."""
        chain: list[str] = []
        area = self._by_code.get(code)
        while area is not None:
            chain.append(area.code)
            area = self._by_code.get(area.parent) if area.parent else None
        return chain

    def label(self, area: Area) -> str:
        """A name people recognise, with its ward and province: 'Tổ 5 · Phường X · Hà Nội'."""
        parts = [area.name]
        parent = self._by_code.get(area.parent) if area.parent else None
        while parent is not None:
            parts.append(parent.name)
            parent = self._by_code.get(parent.parent) if parent.parent else None
        return " · ".join(parts)

    # search

    def _build_index(self) -> None:
        self._areas = list(self._by_code.values())
        self._name_tokens: list[tuple[str, ...]] = []
        self._folded_names: list[str] = []
        self._joined_full: list[str] = []
        self._type_words: list[str] = []
        self._accented: list[set[str]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        province_postings: dict[str, set[str]] = defaultdict(set)
        for index, area in enumerate(self._areas):
            full = fold(area.name)
            folded = strip_type_prefix(full)
            tokens = tuple(folded.split())
            self._name_tokens.append(tokens)
            type_words = full[: len(full) - len(folded)].strip()
            self._type_words.append(type_words)
            words = _accented_words(area.name)
            self._accented.append({" ".join(words), " ".join(words[len(type_words.split()) :])})
            self._folded_names.append(folded.replace(" ", ""))
            self._joined_full.append(full.replace(" ", ""))
            for token in set(tokens):
                postings[token].append(index)
            if area.kind is AreaKind.PROVINCE:
                for token in tokens:
                    province_postings[token].add(area.code)
        self._postings = dict(postings)
        self._province_postings = dict(province_postings)
        self._vocabulary = sorted(set(postings) | set(province_postings))

    def _token_matches(self, token: str) -> dict[str, float]:
        """Vocabulary words a typed word may mean, with a weight: exact, prefix, or near."""
        matches: dict[str, float] = {}
        if token in self._postings or token in self._province_postings:
            matches[token] = 1.0
        if len(token) >= 2:
            start = bisect.bisect_left(self._vocabulary, token)
            for word in self._vocabulary[start : start + 200]:
                if not word.startswith(token):
                    break
                matches.setdefault(word, 0.85)
        if len(token) >= 2:
            cutoff = 0.6 if len(token) >= 6 else 0.7 if len(token) >= 3 else 0.66
            for word, similarity, _ in process.extract(
                token,
                self._vocabulary,
                scorer=Levenshtein.normalized_similarity,
                score_cutoff=cutoff,
                limit=12,
            ):
                matches.setdefault(word, 0.8 * similarity)
        return matches

    def search(self, text: str, limit: int = 30) -> list[Area]:
        """Areas matching typed text, best first."""
        full = fold(text)
        query = strip_type_prefix(full)
        tokens = query.split()
        if not tokens:
            return []
        typed_type = full[: len(full) - len(query)].strip()
        typed_accented = " ".join(_accented_words(text))
        # A misspelt division word ("phuon", "huong") may go unmatched without sinking the rest.
        optional = [
            i == 0 and len(tokens) > 1 and _looks_like_type_word(t) for i, t in enumerate(tokens)
        ]
        per_token: list[tuple[dict[int, float], dict[str, float]]] = []
        for token in tokens:
            name_hits: dict[int, float] = {}
            province_hits: dict[str, float] = {}
            for word, weight in self._token_matches(token).items():
                for index in self._postings.get(word, ()):
                    if name_hits.get(index, 0.0) < weight:
                        name_hits[index] = weight
                for province in self._province_postings.get(word, ()):
                    if province_hits.get(province, 0.0) < weight:
                        province_hits[province] = weight
            per_token.append((name_hits, province_hits))
        candidates: set[int] = set()
        for name_hits, _ in per_token:
            candidates.update(name_hits)
        scored: list[tuple[float, str, int]] = []
        for index in candidates:
            area = self._areas[index]
            total = 0.0
            on_name = 0
            counted = 0
            for (name_hits, province_hits), skippable in zip(per_token, optional, strict=True):
                name_weight = name_hits.get(index, 0.0)
                province_weight = 0.9 * province_hits.get(area.province, 0.0)
                if area.kind is AreaKind.PROVINCE:
                    province_weight = 0.0
                best = max(name_weight, province_weight)
                if best == 0.0:
                    if skippable:
                        continue
                    break
                on_name += name_weight >= province_weight
                total += best
                counted += 1
            else:
                if on_name == 0:
                    continue
                unmatched = max(0, len(self._name_tokens[index]) - on_name)
                score = total / max(counted, 1) - 0.04 * unmatched - 0.1 * (counted < len(tokens))
                if " ".join(self._name_tokens[index]) == query:
                    score += 0.5
                    # Among names equal once folded, prefer the accents and type word typed.
                    score += 0.2 * (typed_accented in self._accented[index])
                    score += 0.1 * (bool(typed_type) and typed_type == self._type_words[index])
                scored.append((-score, fold(area.name), index))
        if not scored:
            return self._search_joined(query, limit)
        scored.sort()
        return [self._areas[index] for _, _, index in scored[:limit]]

    def is_exact(self, area: Area, text: str) -> bool:
        """Whether typed text is exactly the area's name (ignoring case, accents, type word)."""
        return strip_type_prefix(fold(area.name)) == strip_type_prefix(fold(text))

    def _search_joined(self, query: str, limit: int) -> list[Area]:
        """Fallback for run-together or badly misspelt names: fuzzy on whole names."""
        joined = query.replace(" ", "")
        found = [
            (score, index)
            for names in (self._folded_names, self._joined_full)
            for _, score, index in process.extract(
                joined, names, scorer=fuzz.ratio, score_cutoff=78, limit=limit
            )
        ]
        best: dict[int, float] = {}
        for score, index in found:
            best[index] = max(score, best.get(index, 0.0))
        ranked = sorted(best, key=lambda index: -best[index])
        return [self._areas[index] for index in ranked[:limit]]

    # location

    def locate(self, latitude: float, longitude: float, max_km: float) -> Located:
        """The neighbourhood holding the point, else the nearest centre within max_km."""
        nearest: Area | None = None
        nearest_km: float | None = None
        for area in self._areas:
            if any(point_in_ring(longitude, latitude, ring) for ring in area.polygons):
                return Located(area, 0.0)
            if area.latitude is None or area.longitude is None:
                continue
            km = haversine_km(latitude, longitude, area.latitude, area.longitude)
            if nearest_km is None or km < nearest_km:
                nearest, nearest_km = area, km
        if nearest is not None and nearest_km is not None and nearest_km <= max_km:
            return Located(nearest, nearest_km)
        return Located(None, nearest_km)
