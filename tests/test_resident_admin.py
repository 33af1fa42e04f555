"""Resident administration (issue 10 item 3): operators add residents, correct them, record a
move or a death, each with a reason and an audit event naming who; a bad NIK says which part
is wrong; Grogol's (a desa) and Kenep's (a kelurahan) operators never see or change each
other's residents; a registry import reports what changed; a resident's letter history lists
their requests newest first, keyset-paged. Through the engine, the JSON API and the staff
pages (browser flow: tests/browser/test_residents_browser.py)."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.people import resident_admin, resident_history
from engine.people.nik import make_nik
from engine.people.residents import CSV_COLUMNS, import_csv
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import check_subjects, create_request
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Resident
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, Staff
from tests.test_staff_app import P, csrf_of, sign_in

NEW_NIK = make_nik("331101", date(1991, 4, 12), "P", 4321)  # nobody's NIK in the demo data


def actor(session, username: str) -> Actor:
    return Actor.of(get_user(session, username))


def person(nik: str = NEW_NIK, **changes) -> dict[str, str]:
    values = {
        "nik": nik,
        "kk": "3311010101990001",
        "name": "Sari Contoh Baru",
        "birth_place": "Sukoharjo",
        "birth_date": "1991-04-12",
        "sex": "P",
        "religion": "Islam",
        "marital_status": "Kawin",
        "occupation": "Guru",
        "citizenship": "WNI",
        "family_relation": "Istri",
        "address": "Dukuh Contoh",
        "rt": "2",
        "rw": "3",
        "dusun": "Krajan",
    }
    return {**values, **changes}


def events(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def app(services):
    return create_app(services.settings)


@pytest.fixture
def staff(app, logins) -> Staff:
    return Staff(TestClient(app), logins)


# --------------------------------------------------------------------------- engine


def test_add_correct_move_and_death_each_audited_with_who_and_why(services):
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        added = resident_admin.add_resident(
            session, op, person(), "Pendatang baru, KK dari Dukcapil"
        )
        assert (added.village_code, added.rt, added.rw, added.alive) == (GROGOL, "002", "003", True)
        assert (added.citizenship, added.family_relation, added.dusun) == ("WNI", "Istri", "Krajan")
        rid = added.id

        _, changed = resident_admin.correct_resident(
            session, op, rid, {"occupation": "Wiraswasta", "rt": "004"}, "Salah ketik saat input"
        )
        assert changed == ["occupation", "rt"]
        with pytest.raises(InvalidInput, match="Tidak ada data yang berubah"):
            resident_admin.correct_resident(session, op, rid, {"rt": "4"}, "Tidak berubah apa-apa")

        resident_admin.record_move(
            session, op, rid, "2026-11-01", "Jl. Melati 12, Sleman", "Surat pindah dari Dukcapil"
        )
        with pytest.raises(Conflict):
            resident_admin.record_move(session, op, rid, "2026-11-02", "Lagi", "Dua kali pindah")
        # Moved away: no longer a subject this village issues letters about.
        spec = services.catalog.current("surat-keterangan-umum")
        with pytest.raises(InvalidInput) as moved:
            check_subjects(session, spec, GROGOL, {"applicant": NEW_NIK})
        assert "sudah pindah" in moved.value.errors["applicant"]

    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        other = resident_admin.add_resident(
            session,
            op,
            person(
                make_nik("331101", date(1950, 2, 3), "L", 4322),
                birth_date="1950-02-03",
                sex="L",
                name="Karto Contoh",
            ),
            "Warga lama belum terdata",
        )
        resident_admin.record_death(session, op, other.id, "2026-11-20", "Laporan ketua RT")
        assert other.alive is False and other.died_on == date(2026, 11, 20)
        with pytest.raises(Conflict):
            resident_admin.record_death(session, op, other.id, "2026-11-21", "Dicatat dua kali")

        adds = events(session, "resident.add")
        assert [e.actor for e in adds] == ["operator.grogol", "operator.grogol"]
        assert adds[0].reason == "Pendatang baru, KK dari Dukcapil"
        assert adds[0].detail["nik"] == NEW_NIK[:4] + "********" + NEW_NIK[-4:]
        correct = events(session, "resident.correct")[0]
        assert correct.detail["fields"] == ["occupation", "rt"]
        assert correct.reason == "Salah ketik saat input"
        # Only field names and the masked NIK: no value typed into the form reaches the log.
        for event in (*adds, correct):
            text = str(event.detail)
            assert "Wiraswasta" not in text and "Sari" not in text and NEW_NIK not in text
        move = events(session, "resident.move")[0]
        assert move.detail["moved_on"] == "2026-11-01" and "Melati" not in str(move.detail)
        death = events(session, "resident.death")[0]
        assert death.detail["died_on"] == "2026-11-20" and death.actor == "operator.grogol"
        changes = resident_admin.changes_of(session, op, rid)
        assert [c.action for c in changes] == ["resident.move", "resident.correct", "resident.add"]
        assert changes[-1].actor == "Rina Contoh"  # the person's name, not the account's
        assert verify_chain(session).ok


def test_a_recorded_death_uses_the_death_letters_rule(services, logins):
    """Recorded by hand, the resident cannot be the living subject of a new letter, exactly
    as after an issued death letter (workflow subject rule alive: true)."""
    nik = logins.sample_niks[GROGOL][3]
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        resident = session.scalar(select(Resident).where(Resident.nik == nik))
        resident_admin.record_death(session, op, resident.id, "2026-11-02", "Laporan keluarga")
        spec = services.catalog.specs["surat-keterangan-umum"]
        with pytest.raises(InvalidInput) as refused:
            check_subjects(session, spec, GROGOL, {"applicant": nik})
        assert "meninggal" in refused.value.errors["applicant"]


@pytest.mark.parametrize(
    ("nik", "part"),
    [
        ("33110152910001", "16 digit"),
        ("3311015291000A", "karakter ke-14"),
        ("9911015291000001", "provinsi"),
        ("3311019913900001", "digit 7-12"),
        ("3311015201910000", "digit 13-16"),
    ],
)
def test_a_bad_nik_says_which_part_is_wrong(services, nik, part):
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        with pytest.raises(InvalidInput) as refused:
            resident_admin.add_resident(session, op, person(nik), "Warga baru datang")
        assert part in refused.value.errors["nik"]


def test_every_bad_field_is_named_and_the_reason_is_required(services):
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        bad = person(
            kk="12", sex="L", religion="Jedi", rt="12345", name="", birth_date="1991-13-01"
        )
        with pytest.raises(InvalidInput) as refused:
            resident_admin.add_resident(session, op, bad, "Warga baru datang")
        errors = refused.value.errors
        assert {"kk", "religion", "rt", "name", "birth_date"} <= set(errors)
        assert errors["name"] == "wajib diisi" and "16 digit" in errors["kk"]
        mismatch = person(sex="L")  # the NIK says perempuan (day + 40)
        with pytest.raises(InvalidInput) as refused:
            resident_admin.add_resident(session, op, mismatch, "Warga baru datang")
        assert "Jenis kelamin" in refused.value.errors["nik"]
        with pytest.raises(InvalidInput) as refused:
            resident_admin.add_resident(session, op, person(), "  ")
        assert "Alasan wajib diisi" in refused.value.errors["reason"]


def test_villages_are_isolated_and_only_operators_change(services, logins):
    grogol_nik = logins.sample_niks[GROGOL][0]
    with transaction(services.factory) as session:
        kenep_op = actor(session, "operator.kenep")
        grogol_op = actor(session, "operator.grogol")
        kasi = actor(session, "kasi.grogol")
        admin = actor(session, "admin")
        grogol_resident = session.scalar(select(Resident).where(Resident.nik == grogol_nik))
        rid = grogol_resident.id
        for reading in (
            lambda: resident_history.detail(session, kenep_op, rid),
            lambda: resident_history.letter_history(session, kenep_op, rid),
            lambda: resident_admin.correct_resident(
                session, kenep_op, rid, {"rt": "9"}, "Coba ubah"
            ),
            lambda: resident_admin.record_death(session, kenep_op, rid, "2026-01-01", "Coba ubah"),
            lambda: resident_admin.find_for(session, kenep_op, grogol_nik),
        ):
            with pytest.raises(NotFound):
                reading()
        assert resident_history.search(session, kenep_op, grogol_nik[:10]).rows == []
        assert [r.nik for r in resident_history.search(session, grogol_op, grogol_nik).rows] == [
            grogol_nik
        ]
        # The kasi reads the record (KK masked) but may not change it; the admin reads any.
        seen = resident_history.detail(session, kasi, rid)
        assert not seen.may_change and "*" in seen.kk
        with pytest.raises(Forbidden):
            resident_admin.correct_resident(session, kasi, rid, {"rt": "9"}, "Coba ubah")
        assert resident_history.detail(session, admin, rid).nik == grogol_nik
        with pytest.raises(Forbidden):
            resident_admin.add_resident(session, admin, person(), "Admin mencoba")
        # A NIK registered in Grogol cannot be added again in Kenep.
        with pytest.raises(Conflict, match="desa/kelurahan lain"):
            resident_admin.add_resident(
                session,
                kenep_op,
                person(
                    grogol_nik, birth_date=str(grogol_resident.birth_date), sex=grogol_resident.sex
                ),
                "Pindahan",
            )
        assert not events(session, "resident.correct")


def test_search_pages_by_name_and_nik_prefix(services, logins):
    with transaction(services.factory) as session:
        op = actor(session, "operator.kenep")
        first = resident_history.search(session, op, "", size=7)
        assert len(first.rows) == 7 and first.next_cursor
        second = resident_history.search(session, op, "", after=first.next_cursor, size=7)
        names = [r.name for r in first.rows + second.rows]
        assert names == sorted(names) and len(set(r.id for r in first.rows + second.rows)) == 14
        contoh = resident_history.search(session, op, "CONTOH 1")
        assert contoh.rows and all("Contoh 1" in r.name for r in contoh.rows)
        nik = logins.sample_niks[KENEP][0]
        spaced = f"{nik[:4]} {nik[4:8]}"
        assert nik in [r.nik for r in resident_history.search(session, op, spaced).rows]
        with pytest.raises(InvalidInput):
            resident_history.search(session, op, "", after="bukan-penanda!")


# --------------------------------------------------------------------------- import report


HEADER = ",".join((*CSV_COLUMNS, "dusun"))


def csv_row(nik: str, *, occupation="Petani", rt="1", born="1980-05-17", sex="L") -> str:
    fixed = "3311010101010001,Warga Impor,Sukoharjo"
    return f"{nik},{fixed},{born},{sex},Islam,Kawin,{occupation},Dukuh,{rt},2,Krajan"


def test_import_reports_added_updated_unchanged_and_rejected(services):
    a = make_nik("331101", date(1980, 5, 17), "L", 7001)
    b = make_nik("331101", date(1980, 5, 17), "L", 7002)
    c = make_nik("331101", date(1980, 5, 17), "L", 7003)
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        first = import_csv(session, "\n".join([HEADER, csv_row(a), csv_row(b)]), GROGOL, op)
        assert first.ok and [x.row for x in first.added] == [2, 3] and first.created == 2
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        text = "\n".join([HEADER, csv_row(a), csv_row(b, occupation="Guru", rt="5"), csv_row(c)])
        second = import_csv(session, text, GROGOL, op)
        assert second.ok and (second.created, second.updated, second.unchanged) == (1, 1, 1)
        assert [(x.row, x.fields) for x in second.changed] == [(3, ("occupation", "rt"))]
        assert second.added[0].row == 4 and second.added[0].nik.startswith("3311****")
        assert second.summary() == "1 baru, 1 diperbarui, 1 tidak berubah, 0 masalah"
        imports = events(session, "resident.import")
        assert [e.detail["added"] for e in imports] == [2, 1] and imports[1].actor == op.username
    with transaction(services.factory) as session:
        bad = "\n".join([HEADER, csv_row(a), csv_row("3311x", rt="1"), csv_row(b, sex="P")])
        third = import_csv(session, bad, GROGOL)
        assert not third.ok and {(p.row, p.column) for p in third.problems} == {
            (3, "nik"),
            (4, "nik"),
        }
        assert "karakter ke-5" in str(third.problems[0])


def test_cli_import_prints_the_report(services, settings, tmp_path):
    import os
    import subprocess
    import sys

    a = make_nik("331101", date(1980, 5, 17), "L", 7101)
    path = tmp_path / "penduduk.csv"
    path.write_text("\n".join([HEADER, csv_row(a)]) + "\n")
    env = {**os.environ, "SURATDESA_DATABASE_URL": settings.database_url}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "suratdesa.cli",
            "residents",
            "import",
            str(path),
            "--village",
            GROGOL,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "1 baru, 0 diperbarui, 0 tidak berubah" in run.stdout
    assert "baris 2" in run.stdout


# --------------------------------------------------------------------------- letter history


def test_letter_history_newest_first_paged_and_village_isolated(services, logins):
    nik = logins.sample_niks[GROGOL][0]
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        made = [
            create_request(
                session,
                services.catalog,
                op,
                "surat-keterangan-umum",
                {"applicant": nik},
                {"keperluan": f"Keperluan {i}"},
            ).id
            for i in range(5)
        ]
        rid = session.scalar(select(Resident.id).where(Resident.nik == nik))
        page1 = resident_history.letter_history(session, op, rid, size=3)
        page2 = resident_history.letter_history(session, op, rid, after=page1.next_cursor, size=3)
        ids = [i.request_id for i in page1.items + page2.items]
        assert ids[:5] == sorted(made, reverse=True)
        assert all(i.roles == ("applicant",) for i in page1.items)
        assert page1.items[0].state == "draft" and page1.items[0].letter_number is None
        admin = actor(session, "admin")
        assert resident_history.letter_history(session, admin, rid).items[0].request_id == made[-1]
        with pytest.raises(InvalidInput):
            resident_history.letter_history(session, op, rid, after="x1")


def test_api_add_correct_history_and_isolation(staff):
    body = {**person(), "reason": "Warga pindahan, KK baru"}
    added = staff.post("operator.kenep", "/api/residents", body)
    assert added.status_code == 201, added.text
    record = added.json()
    assert record["village_code"] == KENEP and record["rt"] == "002" and record["status"] == ""

    bad = staff.post("operator.kenep", "/api/residents", {**body, "nik": "3311015291000"})
    assert bad.status_code == 422 and "16 digit" in bad.json()["errors"]["nik"]
    again = staff.post("operator.kenep", "/api/residents", body)
    assert again.status_code == 409

    patch = staff.client.patch(
        f"/api/residents/{NEW_NIK}",
        json={"occupation": "Perawat", "reason": "Koreksi pekerjaan"},
        headers=staff.headers("operator.kenep"),
    )
    assert patch.status_code == 200 and patch.json()["changed_fields"] == ["occupation"]
    no_reason = staff.client.patch(
        f"/api/residents/{NEW_NIK}",
        json={"occupation": "X", "reason": ""},
        headers=staff.headers("operator.kenep"),
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["errors"]

    created = staff.post(
        "operator.kenep",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": NEW_NIK},
            "data": {"keperluan": "Daftar sekolah anak"},
        },
    )
    assert created.status_code == 201, created.text
    history = staff.get("operator.kenep", f"/api/residents/{NEW_NIK}/letters").json()
    assert history["items"][0]["request_id"] == created.json()["id"]
    assert history["items"][0]["title"] == "Surat Keterangan Umum"

    # Grogol's operator: the Kenep resident reads as unknown everywhere, and cannot change.
    for path in (
        f"/api/residents/{NEW_NIK}",
        f"/api/residents/{NEW_NIK}/letters",
        f"/api/residents/{NEW_NIK}/record",
    ):
        assert staff.get("operator.grogol", path).status_code == 404
    death = staff.post(
        "operator.grogol",
        f"/api/residents/{NEW_NIK}/death",
        {"died_on": "2026-11-01", "reason": "Coba dari desa lain"},
    )
    assert death.status_code == 404
    assert staff.get("operator.grogol", f"/api/residents?q={NEW_NIK}").json()["residents"] == []
    moved = staff.post(
        "operator.kenep",
        f"/api/residents/{NEW_NIK}/move",
        {"moved_on": "2026-11-02", "moved_to": "Klaten", "reason": "Ikut suami"},
    )
    assert moved.status_code == 200 and moved.json()["status"] == "pindah"
    assert staff.get("admin", f"/api/residents/{NEW_NIK}/record").json()["kk"].count("*") == 8
    paths = staff.client.get("/openapi.json").json()["paths"]
    assert {"/api/residents", "/api/residents/{nik}/move", "/api/residents/{nik}/letters"} <= set(
        paths
    )


# --------------------------------------------------------------------------- staff pages


def test_staff_add_form_keeps_what_was_typed_and_returns_to_the_letter(app):
    client = sign_in(app, "operator.grogol")
    dead_end = client.get(
        f"{P}/penduduk",
        params={"jenis": "surat-keterangan-umum", "subjek": "applicant", "nik": NEW_NIK},
    )
    assert "tidak terdaftar" in dead_end.text and 'id="add-resident"' in dead_end.text
    malformed = client.get(
        f"{P}/penduduk",
        params={"jenis": "surat-keterangan-umum", "subjek": "applicant", "nik": "12"},
    )
    assert "add-resident" not in malformed.text

    form = client.get(
        f"{P}/penduduk/baru",
        params={"nik": NEW_NIK, "jenis": "surat-keterangan-umum", "subjek": "applicant"},
    )
    assert form.status_code == 200 and f'value="{NEW_NIK}"' in form.text
    assert 'value="1991-04-12"' in form.text  # the birth date the NIK encodes
    token = csrf_of(form.text)
    typed = {
        **person(name="Sari Diketik", kk="99"),
        "jenis": "surat-keterangan-umum",
        "subjek": "applicant",
        "reason": "Warga baru",
    }
    refused = client.post(f"{P}/penduduk/baru", data={**typed, "csrf": token})
    assert refused.status_code == 422
    assert "No. KK harus 16 digit angka" in refused.text and 'value="Sari Diketik"' in refused.text
    assert "Warga baru</textarea>" in refused.text
    assert (
        client.post(f"{P}/penduduk/baru", data={**typed, "kk": "3311010101990001"}).status_code
        == 403
    )
    done = client.post(
        f"{P}/penduduk/baru", data={**typed, "kk": "3311010101990001", "csrf": token}
    )
    assert done.status_code == 303
    assert done.headers["location"] == (
        f"{P}/baru?jenis=surat-keterangan-umum&subject_applicant={NEW_NIK}"
    )
    letter_form = client.get(done.headers["location"])
    assert f'value="{NEW_NIK}"' in letter_form.text and "Sari Diketik" in letter_form.text

    search = client.get(f"{P}/penduduk", params={"q": "sari diketik"})
    assert "Sari Diketik" in search.text and 'id="nav-residents"' in search.text
    kenep = sign_in(app, "operator.kenep")
    assert "Sari Diketik" not in kenep.get(f"{P}/penduduk", params={"q": "Sari"}).text


def test_staff_resident_page_history_changes_and_event_forms(app, services):
    client = sign_in(app, "operator.grogol")
    with transaction(services.factory) as session:
        op = actor(session, "operator.grogol")
        rid = resident_admin.add_resident(session, op, person(), "Warga baru datang").id
        create_request(
            session,
            services.catalog,
            op,
            "surat-keterangan-umum",
            {"applicant": NEW_NIK},
            {"keperluan": "Melamar kerja"},
        )
    page = client.get(f"{P}/penduduk/{rid}")
    assert page.status_code == 200
    assert "Surat Keterangan Umum" in page.text and "/permohonan/" in page.text
    assert "Rina Contoh" in page.text and "Warga baru datang" in page.text  # who added, why
    token = csrf_of(page.text)
    form = client.get(f"{P}/penduduk/{rid}/ubah")
    assert form.status_code == 200 and 'value="Guru"' in form.text
    wrong_sex = client.post(
        f"{P}/penduduk/{rid}/ubah",
        data={**person(sex="L"), "reason": "Koreksi jenis kelamin", "csrf": token},
    )
    assert wrong_sex.status_code == 422 and 'id="error-nik"' in wrong_sex.text
    assert "Jenis kelamin" in wrong_sex.text
    assert "Koreksi jenis kelamin</textarea>" in wrong_sex.text
    fixed = client.post(
        f"{P}/penduduk/{rid}/ubah",
        data={**person(occupation="Bidan"), "reason": "Koreksi pekerjaan", "csrf": token},
    )
    assert fixed.status_code == 303 and fixed.headers["location"].endswith("?ok=ubah")
    assert "Pekerjaan" in client.get(fixed.headers["location"]).text
    future = client.post(
        f"{P}/penduduk/{rid}/meninggal",
        data={"csrf": token, "died_on": "2999-01-01", "reason": "Laporan keluarga"},
    )
    assert future.status_code == 422 and "masa depan" in future.text
    assert "Laporan keluarga</textarea>" in future.text
    ok = client.post(
        f"{P}/penduduk/{rid}/meninggal",
        data={"csrf": token, "died_on": "2026-11-03", "reason": "Laporan keluarga"},
    )
    assert ok.status_code == 303
    after = client.get(ok.headers["location"])
    assert "Kematian dicatat." in after.text and "Meninggal pada" in after.text
    kenep = sign_in(app, "operator.kenep")
    assert kenep.get(f"{P}/penduduk/{rid}").status_code == 404
    assert kenep.get(f"{P}/penduduk/{rid}/ubah").status_code == 404
