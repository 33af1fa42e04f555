from dataclasses import FrozenInstanceError

import pytest

from engine import regions


def test_sukoharjo_has_12_districts_and_167_villages() -> None:
    districts = regions.districts()
    villages = regions.villages()
    assert len(districts) == 12
    assert len(villages) == 167
    assert sum(v.kind == "desa" for v in villages) == 150
    assert sum(v.kind == "kelurahan" for v in villages) == 17
    # per-district counts agree with the village table
    for d in districts:
        own = [v for v in villages if v.district_code == d.code]
        assert sum(v.kind == "desa" for v in own) == d.desa_count, d.name
        assert sum(v.kind == "kelurahan" for v in own) == d.kelurahan_count, d.name


def test_village_by_code() -> None:
    v = regions.village("33.11.01.2001")
    assert (v.name, v.kind, v.district_code, v.district_name) == (
        "Grogol",
        "desa",
        "33.11.01",
        "Weru",
    )
    assert v.postal_code == "57562"
    # kelurahan codes start their last part with 1
    assert all(v.code.split(".")[3][0] == "1" for v in regions.villages() if v.kind == "kelurahan")


def test_repeated_village_names_have_distinct_codes() -> None:
    gentan = [v for v in regions.villages() if v.name == "Gentan"]
    assert len(gentan) == 3
    assert len({v.code for v in gentan}) == 3


def test_unknown_village_is_a_key_error_with_message() -> None:
    with pytest.raises(KeyError, match="33.11.99.9999"):
        regions.village("33.11.99.9999")


def test_provinces_and_nik_prefixes() -> None:
    provinces = regions.provinces()
    assert len(provinces) == 38
    assert provinces["33"] == "Jawa Tengah"
    assert "99" not in provinces
    prefixes = regions.nik_prefixes()
    assert len(prefixes) == 7285
    weru = prefixes["331101"]
    assert (weru.code, weru.province, weru.regency, weru.district) == (
        "33.11.01",
        "Jawa Tengah",
        "Kabupaten Sukoharjo",
        "Weru",
    )


def test_tables_are_immutable_and_copies_do_not_leak() -> None:
    with pytest.raises(FrozenInstanceError):
        regions.village("33.11.01.2001").name = "X"  # type: ignore[misc]
    regions.provinces()["33"] = "changed"
    regions.villages().clear()
    assert regions.provinces()["33"] == "Jawa Tengah"
    assert len(regions.villages()) == 167
