"""Reading neighbourhoods from CSV or GeoJSON; every row is checked before any is kept."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.area_catalog import AreaCatalog, AreaKind, Ring, fold
from storage.models import Neighbourhood

NAME_MAX = 200
CODE_MAX = 64


@dataclass(frozen=True)
class RowError:
    """Why one row (a CSV line or a GeoJSON feature) was refused."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class ImportFailedError(Exception):
    """The file had bad rows; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def ward_code(value: object) -> str:
    """'70', '00070' or 'W00070' -> 'W00070'; anything else unchanged (and later refused)."""
    text = str(value or "").strip().upper().removeprefix("W")
    return f"W{int(text):05d}" if text.isdigit() else str(value or "").strip()


def neighbourhood_code(ward: str, name: str) -> str:
    """A stable code from the ward and the name: 'N00070-to-dan-pho-5'."""
    return f"N{ward[1:]}-{fold(name).replace(' ', '-')[:40]}"


def read_file(path: Path, catalog: AreaCatalog) -> list[Neighbourhood]:
    """Parse and check a whole file; raise ImportFailedError listing every bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailedError([RowError(path.name, f"cannot read the file ({exc})")]) from None
    if path.suffix.lower() in (".geojson", ".json"):
        return _check(_geojson_rows(text), catalog)
    return _check(_csv_rows(text), catalog)


@dataclass
class _Row:
    where: str
    name: str
    ward: str
    code: str
    latitude: Any = None
    longitude: Any = None
    polygons: tuple[Ring, ...] = ()
    problem: str | None = None


def _csv_rows(text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if "name" not in fields or not fields & {"ward_code", "parent_ward_code"}:
        return [_Row("line 1", "", "", "", problem="header needs name and ward_code columns")]
    rows = []
    for record in reader:
        values = {str(k).strip().lower(): (v or "").strip() for k, v in record.items() if k}
        rows.append(
            _Row(
                where=f"line {reader.line_num}",
                name=values.get("name", ""),
                ward=ward_code(values.get("ward_code") or values.get("parent_ward_code")),
                code=values.get("code", ""),
                latitude=values.get("latitude") or None,
                longitude=values.get("longitude") or None,
            )
        )
    return rows


def _geojson_rows(text: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [_Row(f"line {getattr(exc, 'lineno', 1)}", "", "", "", problem="not valid JSON")]
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        return [_Row("file", "", "", "", problem="not a GeoJSON FeatureCollection")]
    rows = []
    for number, feature in enumerate(features, start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            rows.append(_Row(f"feature {number}", "", "", "", problem="properties missing"))
            continue
        row = _Row(
            where=f"feature {number}",
            name=str(props.get("name") or "").strip(),
            ward=ward_code(props.get("ward_code") or props.get("parent_ward_code")),
            code=str(props.get("code") or "").strip(),
        )
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        _apply_geometry(row, geometry)
        rows.append(row)
    return rows


def _apply_geometry(row: _Row, geometry: Any) -> None:
    """Point -> centre; Polygon / MultiPolygon -> outer rings and their mean as centre."""
    if geometry is None:
        return
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates: Any = geometry.get("coordinates") if isinstance(geometry, dict) else None
    try:
        if kind == "Point":
            row.longitude, row.latitude = float(coordinates[0]), float(coordinates[1])
        elif kind in ("Polygon", "MultiPolygon"):
            polygons = [coordinates] if kind == "Polygon" else list(coordinates)
            rings = tuple(tuple((float(x), float(y)) for x, y, *_ in poly[0]) for poly in polygons)
            if any(len(ring) < 4 for ring in rings):
                raise ValueError
            if not all(-180 <= x <= 180 and -90 <= y <= 90 for ring in rings for x, y in ring):
                raise ValueError
            row.polygons = rings
            points = [p for ring in rings for p in ring]
            row.longitude = sum(p[0] for p in points) / len(points)
            row.latitude = sum(p[1] for p in points) / len(points)
        else:
            row.problem = f"unsupported geometry {kind!r} (use Point, Polygon or MultiPolygon)"
    except (TypeError, ValueError, IndexError):
        row.problem = f"malformed {kind} coordinates"


def _coordinate(value: Any, low: float, high: float) -> float | None:
    number = float(value)
    if not low <= number <= high:
        raise ValueError
    return number


def _check(rows: list[_Row], catalog: AreaCatalog) -> list[Neighbourhood]:
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    result: list[Neighbourhood] = []
    if not rows:
        raise ImportFailedError([RowError("file", "no rows")])
    for row in rows:
        problem = row.problem or _problem(row, catalog)
        code = row.code or (neighbourhood_code(row.ward, row.name) if not problem else "")
        if not problem and code in seen:
            problem = f"duplicate code {code} (also {seen[code]})"
        if problem:
            errors.append(RowError(row.where, problem))
            continue
        seen[code] = row.where
        result.append(
            Neighbourhood(
                code=code,
                name=row.name,
                ward_code=row.ward,
                latitude=None if row.latitude is None else float(row.latitude),
                longitude=None if row.longitude is None else float(row.longitude),
                polygons=[list(map(list, ring)) for ring in row.polygons],
            )
        )
    if errors:
        raise ImportFailedError(errors)
    return result


def _problem(row: _Row, catalog: AreaCatalog) -> str | None:
    """What is wrong with a row, or None."""
    if not row.name:
        return "name is empty"
    if len(row.name) > NAME_MAX:
        return f"name is longer than {NAME_MAX} characters"
    ward = catalog.get(row.ward)
    if ward is None or ward.kind is not AreaKind.WARD:
        return f"unknown ward code {row.ward or '(empty)'} in this deployment's provinces"
    if len(row.code) > CODE_MAX:
        return f"code is longer than {CODE_MAX} characters"
    existing = catalog.get(row.code) if row.code else None
    if existing is not None and existing.kind is not AreaKind.NEIGHBOURHOOD:
        return f"code {row.code} is already a province or ward code"
    if (row.latitude is None) != (row.longitude is None):
        return "give both latitude and longitude, or neither"
    if row.latitude is not None:
        try:
            _coordinate(row.latitude, -90, 90)
            _coordinate(row.longitude, -180, 180)
        except (TypeError, ValueError):
            return f"invalid coordinates {row.latitude}, {row.longitude}"
    return None
