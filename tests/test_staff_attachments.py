"""Supporting documents: uploaded with a new request or on its page, recognised by content (not
by name), limited in size, and readable only by staff of the request's village."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engine import attachments
from engine.storage.db import transaction
from engine.storage.models import Attachment, LetterRequest
from suratdesa.web import create_app
from tests.letters import GROGOL
from tests.test_staff_app import P, page_csrf, sign_in

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
PURPOSE = "Melamar pekerjaan <di> PT Maju & Jaya"


@pytest.fixture
def app(services):
    return create_app(services.settings)


def new_umum(client, nik: str, files: list[tuple[str, bytes]]):
    return client.post(
        f"{P}/baru",
        data={
            "csrf": page_csrf(client),
            "jenis": "surat-keterangan-umum",
            "subject_applicant": nik,
            "field_keperluan": PURPOSE,
            "field_keterangan": "",
        },
        files=[("attachment", (name, data, "application/octet-stream")) for name, data in files],
    )


def request_count(services) -> int:
    with transaction(services.factory) as session:
        return session.scalar(select(func.count()).select_from(LetterRequest))


def attachment_count(services) -> int:
    with transaction(services.factory) as session:
        return session.scalar(select(func.count()).select_from(Attachment))


def test_accepted_pdf_is_listed_and_downloadable_in_the_village(app, services, logins):
    op = sign_in(app, "operator.grogol")
    r = new_umum(op, logins.sample_niks[GROGOL][0], [("Kartu Keluarga.PDF", PDF)])
    assert r.status_code == 303, r.text
    rid = int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))
    page = op.get(f"{P}/permohonan/{rid}").text
    link = re.search(rf'href="({P}/permohonan/{rid}/lampiran/\d+)">([^<]+)</a>', page)
    assert link and link.group(2) == "Kartu Keluarga.pdf"
    for username in ("operator.grogol", "kasi.grogol", "head.grogol", "admin"):
        got = sign_in(app, username).get(link.group(1))
        assert got.status_code == 200, username
        assert got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-disposition"].startswith("attachment;")

    # Added later on the request page: a PNG, whatever its name says, is kept as a PNG.
    kasi = sign_in(app, "kasi.grogol")
    r = kasi.post(
        f"{P}/permohonan/{rid}/lampiran",
        data={"csrf": page_csrf(kasi)},
        files=[("attachment", ("foto.pdf", PNG, "application/pdf"))],
    )
    assert r.status_code == 303, r.text
    with transaction(services.factory) as session:
        rows = session.scalars(select(Attachment).where(Attachment.request_id == rid)).all()
        assert [(a.filename, a.content_type) for a in rows] == [
            ("Kartu Keluarga.pdf", "application/pdf"),
            ("foto.png", "image/png"),
        ]


def test_other_village_gets_not_found(app, services, logins):
    op = sign_in(app, "operator.grogol")
    r = new_umum(op, logins.sample_niks[GROGOL][0], [("kk.pdf", PDF)])
    rid = int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))
    link = re.search(
        rf'href="({P}/permohonan/{rid}/lampiran/\d+)"', op.get(r.headers["location"]).text
    )
    for username in ("operator.kenep", "kasi.kenep", "head.kenep"):
        other = sign_in(app, username)
        got = other.get(link.group(1))
        assert got.status_code == 404, username
        assert PDF not in got.content
        upload = other.post(
            f"{P}/permohonan/{rid}/lampiran",
            data={"csrf": page_csrf(other)},
            files=[("attachment", ("x.pdf", PDF, "application/pdf"))],
        )
        assert upload.status_code == 404, username
    # Right village, wrong request id in the path: not found either.
    attachment_id = link.group(1).rsplit("/", 1)[1]
    assert op.get(f"{P}/permohonan/{rid + 999}/lampiran/{attachment_id}").status_code == 404
    assert attachment_count(services) == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("scan-besar.pdf", b"%PDF-1.7\n" + b"0" * attachments.MAX_SIZE, "terlalu besar"),
        ("surat.pdf", EXE, "isi berkas bukan PDF, JPEG atau PNG"),
        ("catatan.txt", b"hanya teks biasa", "isi berkas bukan PDF, JPEG atau PNG"),
    ],
)
def test_refused_file_keeps_what_was_typed(app, services, logins, name, data, message):
    op = sign_in(app, "operator.grogol")
    nik = logins.sample_niks[GROGOL][0]
    before = request_count(services)
    r = new_umum(op, nik, [("kk.pdf", PDF), (name, data)])
    assert r.status_code == 422
    assert message in r.text and name in r.text
    assert "Pilih lagi berkasnya" in r.text  # a browser does not keep chosen files
    # What was typed is still in the form (escaped), nothing was stored.
    assert f'value="{nik}"' in r.text
    assert "Melamar pekerjaan &lt;di&gt; PT Maju &amp; Jaya</textarea>" in r.text
    assert request_count(services) == before
    assert attachment_count(services) == 0


def test_limit_per_request_and_empty_upload(app, services, logins):
    op = sign_in(app, "operator.grogol")
    files = [(f"kk{i}.pdf", PDF) for i in range(attachments.MAX_PER_REQUEST)]
    r = new_umum(op, logins.sample_niks[GROGOL][0], files)
    assert r.status_code == 303
    rid = int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))
    more = op.post(
        f"{P}/permohonan/{rid}/lampiran",
        data={"csrf": page_csrf(op)},
        files=[("attachment", ("lagi.png", PNG, "image/png"))],
    )
    assert more.status_code == 422 and "Paling banyak 5 lampiran" in more.text
    nothing = op.post(f"{P}/permohonan/{rid}/lampiran", data={"csrf": page_csrf(op)})
    assert nothing.status_code == 422 and "Pilih berkas" in nothing.text
    assert attachment_count(services) == attachments.MAX_PER_REQUEST


def test_sniffing_and_names():
    assert attachments.sniff(PDF) == ("application/pdf", ".pdf")
    assert attachments.sniff(b"\xff\xd8\xff\xe0rest") == ("image/jpeg", ".jpg")
    assert attachments.sniff(PNG) == ("image/png", ".png")
    assert attachments.sniff(EXE) is None
    assert attachments.sniff(b" %PDF-1.4") is None
    assert attachments.clean_filename("C:\\scan\\..\\<kk>.jpeg", ".jpg") == "kk_.jpg"
    assert attachments.clean_filename("", ".pdf") == "lampiran.pdf"
