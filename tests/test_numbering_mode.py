"""Numbering modes (engine.letters.numbering, engine.letters.number_settings): one register per
classification code (the default) or one per village (the agenda of outgoing letters), switched
mid-year without ever using a seq twice; the regency's classification codes printed in the
number; only the regency admin changes either, and every change is audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from engine.errors import Forbidden, InvalidInput
from engine.letters import number_settings
from engine.letters.group_issuance import issue_group
from engine.requests.letter_requests import create_request, move
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter
from tests.letters import GROGOL, KENEP
from tests.test_issuance import actor
from tests.test_staff_app import P, page_csrf, sign_in

UMUM, USAHA = "surat-keterangan-umum", "surat-keterangan-usaha"
DATA = {
    UMUM: {"keperluan": "Melamar pekerjaan"},
    USAHA: {
        "nama_usaha": "Warung Makan Sari",
        "jenis_usaha": "Kuliner",
        "alamat_usaha": "Jl. Raya Grogol 1",
        "keperluan": "Pengajuan KUR",
    },
}


def ready(services, logins, workflow_id: str, count: int, village=GROGOL, slug="grogol"):
    """Requests of ``workflow_id`` in the signing step (operator submits, sekdes approves)."""
    operator, sekdes = actor(services, f"operator.{slug}"), actor(services, f"sekdes.{slug}")
    out = []
    with transaction(services.factory) as session:
        for i in range(count):
            req = create_request(
                session,
                services.catalog,
                operator,
                workflow_id,
                {"applicant": logins.sample_niks[village][i % 4]},
                DATA[workflow_id],
            )
            move(session, operator, req, "submit", "review", version=1, reason=None)
            move(session, sekdes, req, "approve", "signing", version=2, reason=None)
            out.append((req.id, req.version))
    return out


def set_mode(services, mode: str) -> None:
    with transaction(services.factory) as session:
        number_settings.set_mode(session, actor(services, "admin"), mode)


def issue_in_order(services, passphrase, jobs, slug="grogol") -> list[Letter]:
    head = actor(services, f"head.{slug}")
    with services.issuer.unlock(head, passphrase) as signer:
        return [services.issuer.issue(head, rid, version=ver, signer=signer) for rid, ver in jobs]


def numbers(letters) -> list[str]:
    return ["/".join(letter.number.split("/")[:2]) for letter in letters]


def stored(services, village=GROGOL) -> list[Letter]:
    with transaction(services.factory) as session:
        rows = session.scalars(
            select(Letter).where(Letter.village_code == village).order_by(Letter.id)
        ).all()
        session.expunge_all()
        return list(rows)


def assert_no_seq_twice(letters) -> None:
    by_code = [(x.village_code, x.classification, x.year, x.seq) for x in letters]
    by_register = [(x.village_code, x.register, x.year, x.seq) for x in letters]
    assert len(set(by_code)) == len(by_code)
    assert len(set(by_register)) == len(by_register)
    assert len({x.number for x in letters}) == len(letters)


def test_per_classification_is_the_default(services, logins, passphrase):
    u1, u2 = ready(services, logins, UMUM, 2)
    [s1] = ready(services, logins, USAHA, 1)
    letters = issue_in_order(services, passphrase, [u1, s1, u2])
    assert numbers(letters) == ["400.12.2.1/001", "500.3/001", "400.12.2.1/002"]
    assert [x.register for x in letters] == ["400.12.2.1", "500.3", "400.12.2.1"]


def test_per_village_numbers_every_letter_in_one_register(services, logins, passphrase):
    set_mode(services, "per_village")
    u1, u2 = ready(services, logins, UMUM, 2)
    [s1] = ready(services, logins, USAHA, 1)
    letters = issue_in_order(services, passphrase, [u1, s1, u2])
    # One agenda per village; each number still carries its own letter's code.
    assert numbers(letters) == ["400.12.2.1/001", "500.3/002", "400.12.2.1/003"]
    assert {x.register for x in letters} == {"*"}
    [k1] = ready(services, logins, USAHA, 1, KENEP, "kenep")
    [kenep] = issue_in_order(services, passphrase, [k1], "kenep")
    assert numbers([kenep]) == ["500.3/001"]  # another village: its own register


def test_switching_mode_mid_year_never_uses_a_seq_twice(services, logins, passphrase):
    umum = ready(services, logins, UMUM, 4)
    usaha = ready(services, logins, USAHA, 3)
    first = issue_in_order(services, passphrase, [umum[0], umum[1], usaha[0]])
    assert numbers(first) == ["400.12.2.1/001", "400.12.2.1/002", "500.3/001"]
    # Per village: the village's register starts after the highest seq used this year (2).
    set_mode(services, "per_village")
    second = issue_in_order(services, passphrase, [usaha[1], umum[2]])
    assert numbers(second) == ["500.3/003", "400.12.2.1/004"]
    # Back to per classification: each code resumes after the highest seq its letters used.
    set_mode(services, "per_classification")
    third = issue_in_order(services, passphrase, [umum[3], usaha[2]])
    assert numbers(third) == ["400.12.2.1/005", "500.3/004"]
    assert_no_seq_twice(stored(services))


def test_the_regency_code_setting_changes_the_printed_number(services, logins, passphrase):
    admin = actor(services, "admin")
    with transaction(services.factory) as session:
        number_settings.set_code(session, admin, services.catalog.specs, UMUM, " 400.12.2.5 ")
    [u1] = ready(services, logins, UMUM, 1)
    [letter] = issue_in_order(services, passphrase, [u1])
    assert letter.number.startswith("400.12.2.5/001/")
    assert (letter.classification, letter.register) == ("400.12.2.5", "400.12.2.5")
    with transaction(services.factory) as session:
        for bad in ("4OO.12", "400/12", "400.12.", "400..12", "12"):
            with pytest.raises(InvalidInput):
                number_settings.set_code(session, admin, services.catalog.specs, UMUM, bad)
        with pytest.raises(InvalidInput):
            number_settings.set_code(session, admin, services.catalog.specs, "surat-x", "400")
        number_settings.set_code(session, admin, services.catalog.specs, UMUM, "")  # clear
        assert number_settings.codes(session) == {}
    [u2] = ready(services, logins, UMUM, 1)
    [again] = issue_in_order(services, passphrase, [u2])
    assert again.number.startswith("400.12.2.1/001/")  # the YAML's code, its own register


def test_only_the_regency_admin_changes_numbering_and_it_is_audited(services):
    head = actor(services, "head.grogol")
    with transaction(services.factory) as session:
        with pytest.raises(Forbidden):
            number_settings.set_mode(session, head, "per_village")
        with pytest.raises(Forbidden):
            number_settings.set_code(session, head, services.catalog.specs, UMUM, "400.12")
        with pytest.raises(InvalidInput):
            number_settings.set_mode(session, actor(services, "admin"), "per_desa")
    set_mode(services, "per_village")
    with transaction(services.factory) as session:
        number_settings.set_code(
            session, actor(services, "admin"), services.catalog.specs, USAHA, "500.3.1"
        )
    with transaction(services.factory) as session:
        assert number_settings.mode(session) == "per_village"
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "regency_setting_changed")
            .order_by(AuditEvent.id)
        ).all()
        assert [e.detail for e in events] == [
            {"key": "numbering.mode", "old": None, "new": "per_village"},
            {"key": "classification.codes", "old": None, "new": {USAHA: "500.3.1"}},
        ]
        assert {e.actor for e in events} == {"admin"}
        assert verify_chain(session).ok


def test_per_village_numbers_stay_gapless_under_concurrent_signing(services, logins, passphrase):
    set_mode(services, "per_village")
    jobs = ready(services, logins, UMUM, 10) + ready(services, logins, USAHA, 10)
    head = actor(services, "head.grogol")
    errors: list[Exception] = []
    with services.issuer.unlock(head, passphrase) as signer:

        def issue(job):
            try:
                services.issuer.issue(head, job[0], version=job[1], signer=signer)
            except Exception as exc:  # collected: any failure fails the test below
                errors.append(exc)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(issue, jobs))
    assert errors == []
    letters = stored(services)
    assert sorted(x.seq for x in letters) == list(range(1, 21))
    assert {x.register for x in letters} == {"*"}
    assert_no_seq_twice(letters)
    for x in letters:
        assert x.number.split("/")[1] == f"{x.seq:03}"


def test_a_batch_in_per_village_mode_takes_one_gapless_run(services, logins, passphrase):
    set_mode(services, "per_village")
    umum, usaha = ready(services, logins, UMUM, 3), ready(services, logins, USAHA, 3)
    items = [job for pair in zip(umum, usaha, strict=True) for job in pair]
    [(single_id, single_version)] = ready(services, logins, USAHA, 1)
    head = actor(services, "head.grogol")
    calls = []

    def a_letter_slips_in() -> None:  # another letter takes number 1 before the group stores
        calls.append(1)
        if len(calls) == 1:
            services.issuer.before_store = None
            issue_in_order(services, passphrase, [(single_id, single_version)])
            services.issuer.before_store = a_letter_slips_in

    with services.issuer.unlock(head, passphrase) as signer:
        services.issuer.before_store = a_letter_slips_in
        outcomes = issue_group(services.issuer, head, items, signer)
        services.issuer.before_store = None
    assert all(isinstance(x, Letter) for x in outcomes)
    letters = stored(services)
    assert sorted(x.seq for x in letters) == list(range(1, 8))
    assert_no_seq_twice(letters)


def test_the_admin_page_sets_mode_and_codes(services):
    from suratdesa.web import create_app

    app = create_app(services.settings)
    admin = sign_in(app, "admin")
    page = admin.get(f"{P}/admin/penomoran")
    assert page.status_code == 200 and "400.12.2.1" in page.text
    csrf = page_csrf(admin, f"{P}/admin/penomoran")
    assert admin.post(f"{P}/admin/penomoran/mode", data={"mode": "per_village"}).status_code == 403
    r = admin.post(f"{P}/admin/penomoran/mode", data={"csrf": csrf, "mode": "per_village"})
    assert r.status_code == 303
    r = admin.post(
        f"{P}/admin/penomoran/kode", data={"csrf": csrf, "workflow_id": UMUM, "code": "abc"}
    )
    assert r.status_code == 422 and "tidak sah" in r.text
    r = admin.post(
        f"{P}/admin/penomoran/kode", data={"csrf": csrf, "workflow_id": UMUM, "code": "400.12.2.3"}
    )
    assert r.status_code == 303
    with transaction(services.factory) as session:
        assert number_settings.mode(session) == "per_village"
        assert number_settings.codes(session) == {UMUM: "400.12.2.3"}
    head = sign_in(app, "head.grogol")
    assert head.get(f"{P}/admin/penomoran").status_code == 403
    csrf = page_csrf(head)
    r = head.post(f"{P}/admin/penomoran/mode", data={"csrf": csrf, "mode": "per_classification"})
    assert r.status_code == 403


def _insert(con, table: str, **given) -> None:
    """A row with ``given`` and a placeholder in every other NOT NULL column."""
    values = dict(given)
    for _cid, name, kind, notnull, default, _pk in con.execute(f"PRAGMA table_info({table})"):
        if notnull and default is None and name not in values:
            values[name] = 1 if "INT" in kind.upper() or "BOOL" in kind.upper() else "x"
    sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
    con.execute(sql, list(values.values()))


def test_migration_0022_keeps_every_sequence_and_backfills_registers(tmp_path):
    """number_sequences rows become number_registers rows; letters get register = code."""
    import sqlite3

    from engine.storage.migrate import upgrade

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0021")
    con = sqlite3.connect(path)
    _insert(con, "districts", code="33.11.01")
    _insert(con, "villages", code=GROGOL, district_code="33.11.01")
    _insert(con, "users", id=1, village_code=GROGOL)
    _insert(con, "requests", id=1, village_code=GROGOL, created_by_id=1)
    con.execute("INSERT INTO number_sequences VALUES (?, '470', 2026, 7)", (GROGOL,))
    _insert(
        con,
        "letters",
        request_id=1,
        village_code=GROGOL,
        signer_id=1,
        classification="470",
        year=2026,
        seq=7,
        number=f"470/007/{GROGOL}/XI/2026",
    )
    con.commit()
    con.close()
    upgrade(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    assert con.execute("SELECT * FROM number_registers").fetchall() == [(GROGOL, "470", 2026, 7)]
    assert con.execute("SELECT register FROM letters").fetchall() == [("470",)]
    con.close()
