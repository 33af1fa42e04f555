from datetime import date

import pytest

from engine.people.nik import NikError, check_nik_matches, make_nik, mask_nik, parse_nik

TODAY = date(2026, 11, 20)


def error(text: str) -> NikError:
    with pytest.raises(NikError) as info:
        parse_nik(text, today=TODAY)
    return info.value


def test_valid_male() -> None:
    p = parse_nik("3311010101900001", today=TODAY)
    assert p.nik == "3311010101900001"
    assert (p.province_code, p.regency_code, p.district_prefix) == ("33", "3311", "331101")
    assert p.province_name == "Jawa Tengah"
    assert p.birth_date == date(1990, 1, 1)
    assert p.sex == "L"
    assert p.serial == "0001"
    assert p.kecamatan is not None and p.kecamatan.district == "Weru"
    assert p.warnings == ()


def test_valid_female_day_plus_40() -> None:
    p = parse_nik("3311024503850012", today=TODAY)
    assert p.sex == "P"
    assert p.birth_date == date(1985, 3, 5)
    assert p.kecamatan is not None and p.kecamatan.district == "Bulu"


def test_spaces_dots_and_dashes_are_ignored() -> None:
    for typed in ("3311 0101 0190 0001", " 3311.010101.900001 ", "3311-0101-0190-0001"):
        assert parse_nik(typed, today=TODAY).nik == "3311010101900001"


def test_length() -> None:
    e = error("331101010190001")
    assert e.code == "length"
    assert str(e) == "NIK harus 16 digit, yang dimasukkan 15 digit"
    assert e.position is None
    e = error("33110101019000012")
    assert e.code == "length" and e.position == 17
    assert "17 digit" in e.message
    assert error("   ").code == "length"


def test_not_digits_names_the_position_and_character() -> None:
    e = error("3311x10101900001")
    assert e.code == "not_digits"
    assert e.position == 5
    assert str(e) == "NIK hanya boleh berisi angka: karakter ke-5 ('x') bukan angka"
    # position counts the NIK without the separators people type
    assert error("3311 O101 0190 0001").position == 5
    # digits of other scripts are not NIK digits
    assert error("3311010101900٠01").code == "not_digits"


def test_unknown_province() -> None:
    e = error("9911010101900001")
    assert e.code == "province"
    assert e.position == 1
    assert str(e) == "Kode provinsi '99' (digit 1-2) tidak dikenal"


def test_impossible_birth_date() -> None:
    e = error("3311013102990001")
    assert e.code == "birth_date"
    assert e.position == 7
    assert str(e) == "Tanggal lahir dalam NIK (digit 7-12: 310299) tidak mungkin: 31-02-1999"


@pytest.mark.parametrize(
    ("birth", "position"),
    [("000190", 7), ("350190", 7), ("720190", 7), ("011390", 9), ("010090", 9)],
)
def test_birth_date_day_and_month_out_of_range(birth: str, position: int) -> None:
    e = error(f"331101{birth}0001")
    assert e.code == "birth_date"
    assert e.position == position
    assert f"digit 7-12: {birth}" in e.message


def test_serial_0000() -> None:
    e = error("3311010101900000")
    assert e.code == "serial"
    assert e.position == 13
    assert "0000" in e.message


def test_unknown_kecamatan_prefix_is_a_warning_not_an_error() -> None:
    p = parse_nik("3311990101900001", today=TODAY)
    assert p.kecamatan is None
    assert p.warnings == ("Kode kecamatan 331199 tidak dikenal (mungkin kode lama)",)


def test_century_never_puts_the_birth_in_the_future() -> None:
    assert parse_nik("3311010101260001", today=TODAY).birth_date == date(2026, 1, 1)
    # same year digits, later than today -> the previous century
    assert parse_nik("3311010112260001", today=TODAY).birth_date == date(1926, 12, 1)
    assert parse_nik("3311010101270001", today=TODAY).birth_date == date(1927, 1, 1)
    assert parse_nik("3311010101050001", today=TODAY).birth_date == date(2005, 1, 1)
    # 29 Feb '00 exists only in 2000 (1900 was not a leap year)
    assert parse_nik("3311012902000001", today=TODAY).birth_date == date(2000, 2, 29)


def test_mask() -> None:
    assert mask_nik("3311010101900001") == "3311********0001"
    assert mask_nik("3311 0101 0190 0001") == "3311********0001"
    assert mask_nik("1234") == "****"


def test_make_nik_round_trips() -> None:
    nik = make_nik("33.11.05", date(1961, 8, 17), "P", 42)
    assert nik == "3311055708610042"
    p = parse_nik(nik, today=TODAY)
    assert (p.birth_date, p.sex, p.serial) == (date(1961, 8, 17), "P", "0042")
    with pytest.raises(ValueError):
        make_nik("3311", date(1990, 1, 1), "L", 1)
    with pytest.raises(ValueError):
        make_nik("331101", date(1990, 1, 1), "L", 0)


def test_registry_record_disagreeing_with_nik() -> None:
    p = parse_nik("3311024503850012", today=TODAY)
    assert check_nik_matches(p, date(1985, 3, 5), "P") == []
    problems = check_nik_matches(p, date(1985, 3, 6), "L")
    assert len(problems) == 2
    assert "Jenis kelamin" in problems[0] and "Laki-laki" in problems[0]
    assert "Tanggal lahir" in problems[1] and "06-03-1985" in problems[1]
    # the NIK does not carry the century: 1885 and 1985 both fit "85"
    assert check_nik_matches(p, date(1885, 3, 5), None) == []
    assert check_nik_matches(p, None, None) == []
