"""The area catalogue over the real vietnam-provinces data: search, browse, locate, import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.area_catalog import AreaCatalog, UnknownProvinceError, load_builtin
from storage.area_import import ImportFailedError, read_file
from storage.repositories.areas import to_area


@pytest.fixture(scope="module")
def catalog() -> AreaCatalog:
    """Every province and ward in the country."""
    return AreaCatalog(load_builtin())


def labels(catalog: AreaCatalog, text: str, n: int = 3) -> list[str]:
    """The labels of the first n results."""
    return [catalog.label(area) for area in catalog.search(text)[:n]]


def test_full_catalogue_size(catalog: AreaCatalog) -> None:
    assert len(catalog.provinces()) == 34
    wards = sum(len(catalog.children(p.code)) for p in catalog.provinces())
    assert wards == 3321


@pytest.mark.parametrize(
    "query",
    ["hoan kiem", "Hoàn Kiếm", "phuong hoan kiem", "PHƯỜNG HOÀN KIẾM", "kiem hoan", "p. hoàn kiếm"],
)
def test_diacritics_case_and_word_order_do_not_matter(catalog: AreaCatalog, query: str) -> None:
    assert labels(catalog, query, 1) == ["Phường Hoàn Kiếm · Hà Nội"]


@pytest.mark.parametrize("query", ["hoan kiemm", "hoan kem", "hoankiem", "hoàn kiêm"])
def test_typos_are_tolerated(catalog: AreaCatalog, query: str) -> None:
    assert labels(catalog, query, 1) == ["Phường Hoàn Kiếm · Hà Nội"]


def test_ambiguous_names_show_their_province(catalog: AreaCatalog) -> None:
    found = labels(catalog, "Hoàng Mai", 5)
    assert "Phường Hoàng Mai · Hà Nội" in found
    assert "Phường Hoàng Mai · Nghệ An" in found


def test_province_words_narrow_the_search(catalog: AreaCatalog) -> None:
    assert labels(catalog, "hoang mai nghe an", 1) == ["Phường Hoàng Mai · Nghệ An"]
    assert labels(catalog, "xa tan phu dong nai", 1) == ["Xã Tân Phú · Đồng Nai"]


def test_nonsense_finds_nothing(catalog: AreaCatalog) -> None:
    assert catalog.search("qqqqzzzz") == []
    assert catalog.search("   ") == []


def test_deployment_limits_provinces() -> None:
    limited = AreaCatalog(load_builtin(["Hà Nội", "79"]))
    assert [p.name for p in limited.provinces()] == ["Hà Nội", "Hồ Chí Minh"]
    assert limited.search("hoang mai nghe an") == [] or all(
        a.province in ("P01", "P79") for a in limited.search("hoang mai nghe an")
    )
    with pytest.raises(UnknownProvinceError):
        load_builtin(["Atlantis"])


def _neighbourhoods(tmp_path: Path, catalog: AreaCatalog) -> AreaCatalog:
    square = [[105.850, 21.027], [105.854, 21.027], [105.854, 21.031], [105.850, 21.031]]
    geo = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Tổ dân phố 5", "ward_code": "70"},
                "geometry": {"type": "Polygon", "coordinates": [[*square, square[0]]]},
            },
            {
                "type": "Feature",
                "properties": {"name": "Khu phố Hàng Bạc", "ward_code": "W00070"},
                "geometry": {"type": "Point", "coordinates": [105.8530, 21.0340]},
            },
        ],
    }
    path = tmp_path / "hk.geojson"
    path.write_text(json.dumps(geo), encoding="utf-8")
    local = [to_area(row, "P01") for row in read_file(path, catalog)]
    return AreaCatalog([*load_builtin(["01"]), *local])


def test_locate_in_polygon_nearest_and_far(tmp_path: Path, catalog: AreaCatalog) -> None:
    local = _neighbourhoods(tmp_path, catalog)
    inside = local.locate(21.029, 105.852, max_km=3)
    assert inside.area is not None and inside.area.name == "Tổ dân phố 5"
    near = local.locate(21.0345, 105.8531, max_km=3)
    assert near.area is not None and near.area.name == "Khu phố Hàng Bạc"
    far = local.locate(10.7769, 106.7009, max_km=3)
    assert far.area is None and far.distance_km is not None and far.distance_km > 1000
    assert [a.name for a in local.children("W00070")] == ["Khu phố Hàng Bạc", "Tổ dân phố 5"]
    assert local.ancestors("N00070-to-dan-pho-5") == ["N00070-to-dan-pho-5", "W00070", "P01"]
    assert local.label(local.search("to dan pho 5")[0]).endswith("Phường Hoàn Kiếm · Hà Nội")


def test_broken_import_reports_every_bad_line(tmp_path: Path, catalog: AreaCatalog) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "name,ward_code,latitude,longitude\n"
        "Tổ 1,70,21.03,105.85\n"
        ",70,,\n"
        "Ấp 3,999999,,\n"
        "Khóm 1,70,91,105\n"
        "Khóm 2,70,21.0,\n"
        "Tổ 1,70,21.03,105.85\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailedError) as failure:
        read_file(path, catalog)
    wheres = [e.where for e in failure.value.errors]
    assert wheres == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("title,ward\nx,70\n", encoding="utf-8")
    with pytest.raises(ImportFailedError, match="header"):
        read_file(bad_header, catalog)
    bad_geo = tmp_path / "bad.geojson"
    bad_geo.write_text(
        '{"type": "FeatureCollection", "features": [{"properties": '
        '{"name": "X", "ward_code": 70}, "geometry": {"type": "Line"}}]}',
        encoding="utf-8",
    )
    with pytest.raises(ImportFailedError, match="feature 1"):
        read_file(bad_geo, catalog)
