"""Area-search latency over the full catalogue (34 provinces, 3,321 wards), side by side with a
plain rapidfuzz scan of every label; the goal is p95 under 5 ms.

Run: .venv/bin/python bench/area_search.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from rapidfuzz import fuzz, process

from storage.area_catalog import AreaCatalog, fold, load_builtin


def queries(catalog: AreaCatalog, seed: int = 7) -> list[str]:
    """Every ward name four ways: as written, folded, words swapped, one letter dropped."""
    rng = random.Random(seed)
    found: list[str] = []
    for province in catalog.provinces():
        for ward in catalog.children(province.code):
            folded = fold(ward.name)
            words = folded.split()
            swapped = " ".join(words[1:] + words[:1]) if len(words) > 1 else folded
            cut = rng.randrange(len(folded))
            typo = folded[:cut] + folded[cut + 1 :]
            found += [ward.name, folded, swapped, typo]
    return found


def measure(search: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    """Milliseconds per search."""
    timings: list[float] = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            search(text)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def row(name: str, timings: list[float]) -> str:
    """One line of the table."""
    ordered = sorted(timings)
    p50 = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95)]
    p99 = ordered[int(len(ordered) * 0.99)]
    return f"{name:<34} {len(ordered):>8} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f} {ordered[-1]:>8.2f}"


def main() -> None:
    """Build the catalogue, run every query, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    catalog = AreaCatalog(load_builtin())
    build_ms = (time.perf_counter() - started) * 1000
    texts = queries(catalog)
    labels = [fold(catalog.label(a)) for p in catalog.provinces() for a in catalog.children(p.code)]

    def scan(text: str) -> object:
        return process.extract(fold(text), labels, scorer=fuzz.WRatio, limit=30)

    typed = texts[::4]
    first = sum(1 for name in typed if [a.name for a in catalog.search(name)[:1]] == [name])
    typos = texts[3::4]
    targets = [fold(n) for n in typed]
    found_typo = sum(
        1
        for typo, target in zip(typos, targets, strict=True)
        if any(fold(a.name) == target for a in catalog.search(typo)[:8])
    )
    print(f"catalogue: {len(catalog)} areas, built in {build_ms:.0f} ms; {len(texts)} queries")
    print(f"{'search':<34} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(row("tipline AreaCatalog.search", measure(catalog.search, texts, args.rounds)))
    print(row("rapidfuzz WRatio scan (baseline)", measure(scan, texts, 1)))
    print(f"ward typed exactly, a ward of that name ranked first: {first}/{len(typed)}")
    print(f"one letter dropped, the ward on the first page (8): {found_typo}/{len(typos)}")


if __name__ == "__main__":
    main()
