"""What staff stumbled over in the staff app (issue 9, item 3), through HTTP: titles that follow
the village kind, a signing queue that shows purpose and preview and keeps ticks, the sekdes's
"a.n." in plain words, one reason box and a confirmed rejection, and HTML 404 pages."""

from __future__ import annotations

import re

import pytest

from engine.storage.db import transaction
from engine.storage.models import LetterRequest
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP
from tests.test_staff_app import (
    P,
    client_for,
    create_death_letter,
    do,
    page_csrf,
    sign_in,
    version_of,
)


@pytest.fixture
def app(services):
    return create_app(services.settings)


def create_general_letter(client, applicant: str, purpose: str) -> int:
    r = client.post(
        f"{P}/baru",
        data={
            "csrf": page_csrf(client),
            "jenis": "surat-keterangan-umum",
            "subject_applicant": applicant,
            "field_keperluan": purpose,
            "field_keterangan": "",
        },
    )
    assert r.status_code == 303, r.text
    return int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))


def general_letter_at_signing(app, logins, slug: str, code: str, purpose: str) -> int:
    op = sign_in(app, f"operator.{slug}")
    request_id = create_general_letter(op, logins.sample_niks[code][0], purpose)
    assert do(sign_in(app, f"sekdes.{slug}"), request_id, "approve").status_code == 303
    return request_id


# --------------------------------------------------------------------------- titles


def test_kelurahan_pages_use_kelurahan_titles(app, logins):
    request_id = general_letter_at_signing(app, logins, "kenep", KENEP, "Melamar kerja")
    pages = {
        "operator": ["/beranda", "/permohonan", f"/permohonan/{request_id}"],
        "kasi": ["/beranda", "/antrean", f"/permohonan/{request_id}"],
        "sekdes": ["/beranda", "/antrean", "/tandatangan", f"/permohonan/{request_id}"],
        "head": ["/beranda", "/tandatangan", "/plt", f"/permohonan/{request_id}"],
    }
    for role, paths in pages.items():
        client = sign_in(app, f"{role}.kenep")
        for path in paths:
            html = client.get(P + path).text
            assert "Kepala Desa" not in html and "Sekretaris Desa" not in html, (role, path)
    assert "Sekretaris Kelurahan" in sign_in(app, "sekdes.kenep").get(f"{P}/beranda").text
    head_home = sign_in(app, "head.kenep").get(f"{P}/beranda").text
    assert re.search(r"· Lurah\b", head_home)
    # the timeline names the sekdes who approved by the kelurahan's title
    timeline = sign_in(app, "head.kenep").get(f"{P}/permohonan/{request_id}").text
    assert "(Sekretaris Kelurahan)" in timeline


def test_desa_pages_keep_desa_titles(app):
    assert "Sekretaris Desa" in sign_in(app, "sekdes.grogol").get(f"{P}/beranda").text
    assert "Kepala Desa" in sign_in(app, "head.grogol").get(f"{P}/beranda").text


# --------------------------------------------------------------------------- signing queue


def test_signing_queue_shows_purpose_and_preview_and_keeps_ticks(app, logins):
    general = general_letter_at_signing(app, logins, "grogol", GROGOL, "Pembukaan rekening bank")
    niks = logins.sample_niks[GROGOL]
    op = sign_in(app, "operator.grogol")
    death = create_death_letter(op, niks[1], niks[3])
    assert do(sign_in(app, "kasi.grogol"), death, "approve").status_code == 303
    assert do(sign_in(app, "sekdes.grogol"), death, "approve").status_code == 303
    head = sign_in(app, "head.grogol")
    queue = head.get(f"{P}/tandatangan").text
    assert "Pembukaan rekening bank" in queue  # the keperluan field
    assert "Nama: " in queue  # no keperluan: the type's first public fact
    for request_id in (general, death):
        assert f"{P}/permohonan/{request_id}/pratinjau.pdf" in queue
    preview = head.get(f"{P}/permohonan/{general}/pratinjau.pdf")
    assert preview.status_code == 200 and preview.content.startswith(b"%PDF")
    assert 'id="on-behalf"' not in queue  # the head signs as head

    pick = re.search(rf'name="req" value="({general}:\d+)"', queue).group(1)
    wrong = head.post(
        f"{P}/tandatangan", data={"csrf": page_csrf(head), "req": [pick], "passphrase": "salah"}
    )
    assert wrong.status_code == 403
    assert re.search(rf'value="{general}:\d+"[^>]*checked', wrong.text)
    assert not re.search(rf'value="{death}:\d+"[^>]*checked', wrong.text)


@pytest.mark.parametrize(
    ("slug", "code", "head", "own"),
    [
        ("grogol", GROGOL, "a.n. Kepala Desa Grogol", "Sekretaris Desa"),
        ("kenep", KENEP, "a.n. Lurah Kenep", "Sekretaris Kelurahan"),
    ],
)
def test_sekdes_queue_says_it_signs_on_behalf_of_the_head(app, logins, slug, code, head, own):
    request_id = general_letter_at_signing(app, logins, slug, code, "Melamar kerja")
    sekdes = sign_in(app, f"sekdes.{slug}")
    queue = sekdes.get(f"{P}/tandatangan").text
    notice = re.search(r'id="on-behalf">(.*?)</p>', queue, re.S).group(1)
    assert f"“{head}”" in notice and own in notice and "atas nama" in notice
    page = sekdes.get(f"{P}/permohonan/{request_id}").text
    notice = re.search(r'id="on-behalf">(.*?)</p>', page, re.S).group(1)
    assert f"“{head}”" in notice
    assert "atas nama kepala desa/lurah: a.n." not in page


# --------------------------------------------------------------------------- return / reject


def test_one_reason_box_and_reject_needs_confirmation(app, logins, services):
    niks = logins.sample_niks[GROGOL]
    request_id = create_death_letter(sign_in(app, "operator.grogol"), niks[0], niks[3])
    kasi = sign_in(app, "kasi.grogol")
    page = kasi.get(f"{P}/permohonan/{request_id}").text
    assert page.count('name="reason"') == 1
    assert "Saya yakin menolak permohonan ini" in page

    refused = do(kasi, request_id, "reject", "Data tidak sesuai")
    assert refused.status_code == 422
    assert "centang dulu kotak konfirmasi" in refused.text
    assert "Data tidak sesuai" in refused.text  # the reason typed is kept
    shown_version = int(version_of(kasi, request_id))
    with transaction(services.factory) as session:
        req = session.get(LetterRequest, request_id)
        assert req.state == "review" and req.version == shown_version
        version = req.version

    ok = do(kasi, request_id, "reject", "Data tidak sesuai", confirm_reject="1")
    assert ok.status_code == 303, ok.text
    with transaction(services.factory) as session:
        req = session.get(LetterRequest, request_id)
        assert req.state == "rejected" and req.version == version + 1


def test_return_needs_no_confirmation(app, logins):
    niks = logins.sample_niks[GROGOL]
    request_id = create_death_letter(sign_in(app, "operator.grogol"), niks[0], niks[3])
    kasi = sign_in(app, "kasi.grogol")
    assert do(kasi, request_id, "return", "NIK pelapor keliru").status_code == 303


# --------------------------------------------------------------------------- 404 pages


@pytest.mark.parametrize("path", ["/permohonan/999999", "/tidak-ada", "/permohonan/1/tidak-ada"])
def test_unknown_staff_addresses_are_html_404_pages(app, path):
    client = sign_in(app, "operator.grogol")
    r = client.get(P + path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>" in r.text and "beranda" in r.text.lower()
    assert "Operator" in r.text  # the page keeps the signed-in header


def test_unknown_address_signed_out_and_outside_staf(app):
    r = client_for(app).get(f"{P}/tidak-ada")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    api = client_for(app).get("/api/tidak-ada")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
