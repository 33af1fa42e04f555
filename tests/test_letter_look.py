"""Letters that look official: the kop with the regency emblem (uploaded by the regency admin,
a neutral placeholder until then) and the village's address, phone, email and website; the
electronic signature block (QR beside "Ditandatangani secara elektronik oleh" and the name);
the footer on every page saying the letter is signed electronically and where to check it."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageDraw, PngImagePlugin
from sqlalchemy import select

from engine.errors import Forbidden, InvalidInput
from engine.letters import kop
from engine.letters.layout_emblem import Emblem, prepared_emblem
from engine.letters.render import SignerInfo, render_letter
from engine.people.admin import clean_email, clean_phone, clean_website
from engine.people.users import Actor, get_user
from engine.storage.db import session_factory, transaction
from engine.storage.models import AuditEvent, RegencySetting, Village
from suratdesa.web import create_app
from tests.conftest import require_tool
from tests.test_render import GROGOL, KENEP, LETTERS, TEMPLATES, URL, pdf_text, qr_codes
from tests.test_staff_app import P, csrf_of, sign_in

GROGOL_CODE = "33.11.01.2001"
CONTACTS = {
    "phone": "(0271) 593777",
    "email": "kantor.grogol@sukoharjokab.example",
    "website": "https://grogol.sukoharjokab.example",
}


def png(width: int = 300, height: int = 360, *, alpha: bool = True, text: str = "") -> bytes:
    """A test emblem (a green oval on transparency), optionally with a text chunk."""
    im = Image.new("RGBA" if alpha else "RGB", (width, height), (0, 0, 0, 0) if alpha else "white")
    ImageDraw.Draw(im).ellipse((4, 4, width - 4, height - 4), fill=(20, 120, 40, 255))
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", text)
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def flat(pdf: bytes, tmp_path: Path) -> str:
    return " ".join(pdf_text(pdf, tmp_path).split())


def images(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    """`pdfimages -list` rows: page, num, type (image/smask), width, height, ..."""
    tool = require_tool("pdfimages")
    path = tmp_path / "look.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([tool, "-list", str(path)], capture_output=True, text=True, check=True)
    return [line.split() for line in out.stdout.splitlines()[2:]]


def umum(**village: object):
    return replace(LETTERS["umum"], village=replace(GROGOL, **village))


# --------------------------------------------------------------------------- the page


def test_kop_prints_the_contact_lines_and_the_signature_block_says_who_signed(tmp_path):
    pdf = render_letter(TEMPLATES / "umum.html.j2", umum(**CONTACTS), verify_url=URL)
    text = flat(pdf, tmp_path)
    for expected in (
        "Jl. Raya Weru-Grogol No. 12, Kode Pos 57562",
        "Telepon (0271) 593777",
        "Pos-el: kantor.grogol@sukoharjokab.example",
        "Laman: https://grogol.sukoharjokab.example",
        "Ditandatangani secara elektronik oleh: SUTRISNO",
        "Dokumen ini ditandatangani secara elektronik menggunakan sertifikat elektronik",
        "Informasi dan Transaksi Elektronik",
        f"memindai kode QR atau membuka {URL}",
    ):
        assert expected in text, expected
    assert "BSrE" not in text and "Balai Sertifikasi" not in text  # we claim no BSrE
    assert [c[0] for c in qr_codes(pdf)] == [URL]


def test_contact_lines_left_empty_are_not_printed(tmp_path):
    text = flat(render_letter(TEMPLATES / "umum.html.j2", umum(), verify_url=URL), tmp_path)
    assert "Telepon" not in text and "Pos-el" not in text and "Laman" not in text
    only_email = umum(email="desa@sukoharjo.example")
    text = flat(render_letter(TEMPLATES / "umum.html.j2", only_email, verify_url=URL), tmp_path)
    assert "Pos-el: desa@sukoharjo.example" in text and "Telepon" not in text


def test_the_footer_is_on_every_page(tmp_path):
    long = " ".join(["Keterangan panjang yang harus tetap terbaca seluruhnya."] * 120)
    content = replace(
        LETTERS["umum"], fields={"keperluan": "Lain-lain", "keterangan": long + " AKHIR"}
    )
    pdf = render_letter(TEMPLATES / "umum.html.j2", content, verify_url=URL, paper="A4")
    doc = pypdfium2.PdfDocument(pdf)
    assert len(doc) >= 3
    margin = 18 / 25.4 * 72  # the template's bottom margin, in points from the paper's edge
    for page in doc:
        textpage = page.get_textpage()
        foot = " ".join(textpage.get_text_bounded(top=margin).split())
        body = " ".join(textpage.get_text_bounded(bottom=margin).split())
        assert "Dokumen ini ditandatangani secara elektronik" in foot and URL in foot
        assert "Dokumen ini" not in body and "Keterangan" not in foot  # no overlap


def test_a_lurah_signs_with_nip(tmp_path):
    lurah = SignerInfo(("LURAH KENEP",), "Dra. Wahyuningsih", "197901012005012003")
    content = replace(LETTERS["umum"], village=KENEP, signer=lurah)
    text = flat(render_letter(TEMPLATES / "umum.html.j2", content, verify_url=URL), tmp_path)
    assert "Ditandatangani secara elektronik oleh: DRA. WAHYUNINGSIH NIP. 197901012005012003" in (
        text
    )
    no_nip = replace(content, signer=replace(lurah, nip=None))
    text = flat(render_letter(TEMPLATES / "umum.html.j2", no_nip, verify_url=URL), tmp_path)
    assert "DRA. WAHYUNINGSIH NIP. -" in text  # a Lurah's NIP line is never silently dropped


def test_a_draft_keeps_no_qr_and_claims_no_signature(tmp_path):
    content = replace(umum(**CONTACTS), number=None)
    pdf = render_letter(TEMPLATES / "umum.html.j2", content, verify_url=None, draft=True)
    assert qr_codes(pdf) == []
    text = flat(pdf, tmp_path)
    assert "DRAFT" in text and "Telepon (0271) 593777" in text
    assert "Ditandatangani secara elektronik oleh" not in text
    assert "Dokumen ini ditandatangani" not in text
    assert "belum ditandatangani secara elektronik" in text


def test_placeholder_without_emblem_and_the_image_with_one(tmp_path):
    plain = render_letter(TEMPLATES / "umum.html.j2", umum(), verify_url=URL)
    assert images(plain, tmp_path) == []  # the placeholder is a drawn outline, no picture
    emblem = Emblem.of(kop.canonical_emblem(png()))
    pdf = render_letter(TEMPLATES / "umum.html.j2", umum(emblem=emblem), verify_url=URL)
    rows = images(pdf, tmp_path)
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("1", "image", "300", "360"),
        ("1", "smask", "300", "360"),
    ]
    assert [c[0] for c in qr_codes(pdf)] == [URL]  # the QR still decodes beside it
    # prepared once per process: the next letter reuses the same compressed bytes
    assert prepared_emblem(emblem) is prepared_emblem(Emblem.of(emblem.png))
    again = render_letter(TEMPLATES / "umum.html.j2", umum(emblem=emblem), verify_url=URL)
    assert len(images(again, tmp_path)) == 2


def test_a_stored_emblem_fpdf_cannot_read_falls_back_to_the_placeholder(tmp_path):
    broken = Emblem.of(b"\x89PNG\r\n\x1a\n not really")
    pdf = render_letter(TEMPLATES / "umum.html.j2", umum(emblem=broken), verify_url=URL)
    assert images(pdf, tmp_path) == [] and [c[0] for c in qr_codes(pdf)] == [URL]


# --------------------------------------------------------------------------- the upload


def test_canonical_emblem_re_encodes_and_refuses_what_it_cannot_read():
    stored = kop.canonical_emblem(png(text="secret metadata"))
    assert stored.startswith(b"\x89PNG") and b"secret metadata" not in stored
    big = kop.canonical_emblem(png(1600, 1200, alpha=False))
    with Image.open(io.BytesIO(big)) as im:
        assert im.format == "PNG" and im.size == (600, 450) and im.mode == "RGB"
    jpeg = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(jpeg, "JPEG")
    assert kop.canonical_emblem(jpeg.getvalue()).startswith(b"\x89PNG")
    gif = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(gif, "GIF")
    for bad, why in (
        (b"", "kosong"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "bukan gambar PNG atau JPEG"),
        (gif.getvalue(), "bukan gambar PNG atau JPEG"),
        (png()[:200], "bukan gambar PNG atau JPEG"),  # truncated
        (png(5000, 40), "tidak diterima"),  # too wide (small file, checked before decoding)
        (png(20, 20), "tidak diterima"),
        (png(400, 40), "terlalu memanjang"),
        (png() + b"\0" * kop.EMBLEM_MAX_BYTES, "terlalu besar"),
    ):
        with pytest.raises(InvalidInput, match=why):
            kop.canonical_emblem(bad)


@pytest.fixture
def app(services):
    return create_app(services.settings)


def _stored(settings) -> bytes | None:
    with transaction(session_factory(settings.database_url)) as session:
        return kop.load_emblem(session) and kop.load_emblem(session).png


def _emblem_events(settings) -> list[AuditEvent]:
    with transaction(session_factory(settings.database_url)) as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "regency_setting_changed")
                .order_by(AuditEvent.id)
            )
        )


def _upload(client, data: bytes, name: str = "lambang.png"):
    csrf = csrf_of(client.get(f"{P}/admin/kabupaten").text)
    return client.post(
        f"{P}/admin/kabupaten/lambang",
        data={"csrf": csrf},
        files={"emblem": (name, data, "image/png")},
    )


def test_the_regency_admin_uploads_the_emblem_and_letters_print_it(app, settings, tmp_path):
    admin = sign_in(app, "admin")
    page = admin.get(f"{P}/admin/kabupaten")
    assert page.status_code == 200 and "tempat lambang polos" in page.text
    assert f'href="{P}/admin/kabupaten"' in admin.get(f"{P}/beranda").text  # in the admin nav
    upload = png(text="from the camera")
    r = _upload(admin, upload)
    assert r.status_code == 303 and r.headers["location"].endswith("?ok=lambang")
    stored = _stored(settings)
    assert stored == kop.canonical_emblem(upload) and stored != upload  # re-encoded by us
    (event,) = _emblem_events(settings)
    assert event.actor == "admin" and event.detail["key"] == "kop.emblem"
    assert event.detail["new"]["sha256"] == Emblem.of(stored).sha256
    assert event.detail["old"] is None
    shown = admin.get(f"{P}/admin/kabupaten")
    assert Emblem.of(stored).sha256 in shown.text
    src = re.search(r'<img src="data:image/png;base64,([^"]+)"', shown.text).group(1)
    assert base64.b64decode(src) == stored  # the preview shows what letters print

    # A letter of the village now prints the emblem and the village's data as stored.
    with transaction(session_factory(settings.database_url)) as session:
        info = kop.village_info(session, session.get(Village, GROGOL_CODE))
    assert info.emblem == Emblem.of(stored)
    content = replace(LETTERS["umum"], village=info)
    pdf = render_letter(TEMPLATES / "umum.html.j2", content, verify_url=URL)
    assert [r[2] for r in images(pdf, tmp_path)] == ["image", "smask"]

    # Removed again: the placeholder, audited.
    csrf = csrf_of(shown.text)
    r = admin.post(f"{P}/admin/kabupaten/lambang/hapus", data={"csrf": csrf})
    assert r.status_code == 303 and _stored(settings) is None
    assert _emblem_events(settings)[-1].detail["new"] is None
    assert "data:image/png" not in admin.get(f"{P}/admin/kabupaten").text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not an emblem", "bukan gambar PNG atau JPEG"),
        (b"%PDF-1.7\n", "bukan gambar PNG atau JPEG"),
        (b"", "kosong"),
    ],
)
def test_a_file_that_is_not_an_image_is_refused_and_nothing_stored(app, settings, data, message):
    admin = sign_in(app, "admin")
    r = _upload(admin, data)
    assert r.status_code == 422 and message in r.text
    assert _stored(settings) is None and _emblem_events(settings) == []


def test_an_oversized_emblem_is_refused_and_nothing_stored(app, settings):
    admin = sign_in(app, "admin")
    r = _upload(admin, png() + b"\0" * (kop.EMBLEM_MAX_BYTES + 10))
    assert r.status_code == 422 and "terlalu besar" in r.text
    r = _upload(admin, png(4100, 100))
    assert r.status_code == 422 and "tidak diterima" in r.text
    assert _stored(settings) is None and _emblem_events(settings) == []


def test_the_upload_needs_its_csrf_token(app, settings):
    admin = sign_in(app, "admin")
    r = admin.post(
        f"{P}/admin/kabupaten/lambang",
        data={"csrf": "wrong"},
        files={"emblem": ("lambang.png", png(), "image/png")},
    )
    assert r.status_code == 403 and _stored(settings) is None


@pytest.mark.parametrize("username", ["head.grogol", "operator.grogol", "sekdes.kenep"])
def test_only_the_regency_admin_may_change_the_emblem(app, settings, username):
    other = sign_in(app, username)
    assert other.get(f"{P}/admin/kabupaten").status_code == 403
    csrf = csrf_of(other.get(f"{P}/beranda").text)
    r = other.post(
        f"{P}/admin/kabupaten/lambang",
        data={"csrf": csrf},
        files={"emblem": ("lambang.png", png(), "image/png")},
    )
    assert r.status_code == 403
    assert other.post(f"{P}/admin/kabupaten/lambang/hapus", data={"csrf": csrf}).status_code == 403
    assert _stored(settings) is None and _emblem_events(settings) == []


def test_the_engine_refuses_a_non_admin_whatever_the_face(settings):
    with transaction(session_factory(settings.database_url)) as session:
        head = Actor.of(get_user(session, "head.grogol"))
        with pytest.raises(Forbidden):
            kop.set_emblem(session, head, png())
        assert session.get(RegencySetting, kop.EMBLEM_KEY) is None


# --------------------------------------------------------------------------- village contacts


def test_phone_email_and_website_are_checked():
    assert clean_phone(" (0271)  593100 ") == "(0271) 593100"
    assert clean_phone("+62 271 593100") == "+62 271 593100"
    assert clean_email("desa.grogol@sukoharjokab.go.id") == "desa.grogol@sukoharjokab.go.id"
    assert clean_website("Grogol.SukoharjoKab.go.id") == "https://grogol.sukoharjokab.go.id"
    assert clean_website("http://grogol.example/profil") == "http://grogol.example/profil"
    assert clean_phone("") == clean_email(" ") == clean_website("") == ""
    for check, bad in (
        (clean_phone, "0271-CALL-ME"),
        (clean_phone, "123"),
        (clean_phone, "0271 + 593100"),
        (clean_email, "desa.grogol"),
        (clean_email, "a@b"),
        (clean_email, "a b@c.id"),
        (clean_website, "javascript:alert(1)"),
        (clean_website, "ftp://grogol.example"),
        (clean_website, "https://user@grogol.example"),
        (clean_website, "https://grogol.example:8080"),
        (clean_website, "https://grogol.example/?q=<b>"),
        (clean_website, "localhost"),
    ):
        with pytest.raises(InvalidInput):
            check(bad)


def test_the_admin_sets_the_village_contacts_audited_and_printed(app, settings, tmp_path):
    admin = sign_in(app, "admin")
    page = admin.get(f"{P}/admin/desa/{GROGOL_CODE}").text
    for name in ("phone", "email", "website"):
        assert f'name="{name}"' in page
    bad = admin.post(
        f"{P}/admin/desa/{GROGOL_CODE}",
        data={"csrf": csrf_of(page), "phone": "(0271) 593100", "email": "bukan-email"},
    )
    assert bad.status_code == 422 and "pos-el tidak valid" in bad.text
    with transaction(session_factory(settings.database_url)) as session:
        before = session.get(Village, GROGOL_CODE)
        old = {k: getattr(before, k) for k in CONTACTS}
    r = admin.post(f"{P}/admin/desa/{GROGOL_CODE}", data={"csrf": csrf_of(page), **CONTACTS})
    assert r.status_code == 303, r.text
    with transaction(session_factory(settings.database_url)) as session:
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "village.update")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert event.actor == "admin"
        assert event.detail["changes"] == {k: [old[k], v] for k, v in CONTACTS.items()}
        info = kop.village_info(session, session.get(Village, GROGOL_CODE))
    shown = admin.get(f"{P}/admin/desa/{GROGOL_CODE}").text
    assert re.search(r'name="email"[^>]*value="kantor.grogol@sukoharjokab.example"', shown)
    content = replace(LETTERS["umum"], village=info)
    text = flat(render_letter(TEMPLATES / "umum.html.j2", content, verify_url=URL), tmp_path)
    assert "Telepon (0271) 593777" in text and "Laman: https://grogol.sukoharjokab.example" in text


def test_the_demo_villages_have_contact_lines(settings):
    with transaction(session_factory(settings.database_url)) as session:
        for code in (GROGOL_CODE, "33.11.04.1001"):
            village = session.get(Village, code)
            assert village.phone and village.email and village.website
            clean_phone(village.phone), clean_email(village.email), clean_website(village.website)
