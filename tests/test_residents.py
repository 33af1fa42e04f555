"""Resident registry: all-or-nothing CSV import with a report of every bad row."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from sqlalchemy import func, select

from engine.people.nik import make_nik
from engine.people.residents import CSV_COLUMNS, import_csv
from engine.storage.db import transaction
from engine.storage.models import Resident

HEADER = ",".join(CSV_COLUMNS)
VILLAGE = "33.11.01.2002"  # Karangtengah: no demo residents there


def row(nik: str, *, sex="L", born="1980-05-17", kk="3311010101010001", name="Warga Contoh") -> str:
    return f"{nik},{kk},{name},Sukoharjo,{born},{sex},Islam,Kawin,Petani,Dusun I,1,2"


def count(session) -> int:
    return session.scalar(select(func.count(Resident.id)).where(Resident.village_code == VILLAGE))


def test_good_file_imports_every_row(services):
    good = [
        row(make_nik("331101", date(1980, 5, 17), "L", 1)),
        row(make_nik("331101", date(1985, 1, 2), "P", 2), sex="P", born="1985-01-02"),
    ]
    with transaction(services.factory) as session:
        report = import_csv(session, "\n".join([HEADER, *good]), VILLAGE)
        assert report.ok and report.created == 2
        assert count(session) == 2
        person = session.scalar(select(Resident).where(Resident.nik == good[1][:16]))
        assert (person.sex, person.rt, person.rw) == ("P", "001", "002")


def test_one_bad_row_imports_nothing_and_every_problem_is_reported(services):
    ok = make_nik("331101", date(1980, 5, 17), "L", 1)
    lines = [
        HEADER,
        row(ok),
        row("33110117058", born="1980-05-17"),  # too short
        row(make_nik("331101", date(1990, 3, 4), "L", 3), sex="P", born="1990-03-04"),
        row(make_nik("331101", date(1990, 3, 4), "L", 4), born="1990-13-04"),
        row(ok),  # duplicate of line 2
        row(make_nik("331101", date(1970, 1, 1), "L", 5), kk="12"),
    ]
    with transaction(services.factory) as session:
        report = import_csv(session, "\n".join(lines), VILLAGE)
        assert not report.ok
        found = {(p.row, p.column) for p in report.problems}
        assert {(3, "nik"), (4, "nik"), (5, "birth_date"), (6, "nik"), (7, "kk")} <= found
        assert "16 digit" in next(p.reason for p in report.problems if p.row == 3)
        assert count(session) == 0


def test_cli_import_reports_rows_and_exits_nonzero(services, settings, tmp_path):
    bad = tmp_path / "warga.csv"
    bad.write_text("\n".join([HEADER, row("3311011705800001", sex="X")]), encoding="utf-8")
    env = {"SURATDESA_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "suratdesa.cli",
            "residents",
            "import",
            str(bad),
            "--village",
            VILLAGE,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    assert "baris 2, kolom sex" in result.stderr
    good = tmp_path / "ok.csv"
    good.write_text("\n".join([HEADER, row("3311011705800001")]), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "suratdesa.cli",
            "residents",
            "import",
            str(good),
            "--village",
            VILLAGE,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "1 baru" in result.stdout
    with transaction(services.factory) as session:
        assert count(session) == 1
