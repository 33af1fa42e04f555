"""Forgeries built from a genuine letter of every type, each judged by every face.

Each forgery appends revisions after the certified letter, the class of attack that got past
third-party difference analysis: a document timestamp whose field draws something, an
annotation or an object nothing references riding along with a genuine timestamp, a changed
or freed object, a catalog change beside validation data, an archival timestamp from a TSA of
our own making that copies our names. Every one must be TIDAK SAH from the CLI, `/verify` and
`/api/public/verify`, with the same verdict; the genuine letter and one with genuine archival
updates stay ASLI everywhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko_certvalidator import ValidationContext

from engine.config import PROJECT_ROOT
from engine.trust import pki, signing
from suratdesa.web import create_app
from tests.letters import LETTERS, Staff, issue

N = generic.NameObject


def _timestamp(pdf: bytes, keys_dir: Path, change=None, field_name: str | None = None) -> bytes:
    """A document timestamp by ``keys_dir``'s TSA, in a revision that also carries ``change``."""
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    if change is not None:
        change(w)
    stamper = PdfTimeStamper(signing.make_timestamper(None, keys_dir), field_name=field_name)
    return stamper.timestamp_pdf(w, "sha256").getvalue()


def _add_to_page(w: IncrementalPdfFileWriter, ref: generic.IndirectObject) -> None:
    page_ref, _ = w.find_page_for_modification(0)
    page = page_ref.get_object()
    annots = page.get("/Annots")
    if annots is None:
        page[N("/Annots")] = generic.ArrayObject([ref])
    else:
        annots.append(ref)
    w.update_container(page)


def _drawing(w: IncrementalPdfFileWriter) -> generic.IndirectObject:
    """A form XObject that paints a white box with a black bar over the letter's text."""
    stream = generic.StreamObject(
        {
            N("/Type"): N("/XObject"),
            N("/Subtype"): N("/Form"),
            N("/BBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 340, 60)]),
        },
        stream_data=b"1 1 1 rg 0 0 340 60 re f 0 0 0 rg 10 20 320 20 re f",
    )
    return w.add_object(stream)


def visible_timestamp_field(pdf: bytes, keys_dir: Path) -> bytes:
    """The document timestamp's own field is a widget that draws over the page."""

    def change(w):
        spec = fields.SigFieldSpec("Stempel", box=(60, 600, 400, 660), on_page=0)
        fields.append_signature_field(w, spec)
        form = w.root["/AcroForm"]
        ref = next(r for r in form["/Fields"] if r.get_object().get("/T") == "Stempel")
        ref.get_object()[N("/AP")] = generic.DictionaryObject({N("/N"): _drawing(w)})
        w.mark_update(ref)

    return _timestamp(pdf, keys_dir, change, field_name="Stempel")


def annotation_with_timestamp(pdf: bytes, keys_dir: Path) -> bytes:
    """A stamp annotation painted over the page in the same revision as a genuine timestamp."""

    def change(w):
        annot = generic.DictionaryObject(
            {
                N("/Type"): N("/Annot"),
                N("/Subtype"): N("/Stamp"),
                N("/F"): generic.NumberObject(4),
                N("/Rect"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (60, 600, 400, 660)]
                ),
                N("/AP"): generic.DictionaryObject({N("/N"): _drawing(w)}),
            }
        )
        _add_to_page(w, w.add_object(annot))

    return _timestamp(pdf, keys_dir, change)


def unreferenced_object_with_timestamp(pdf: bytes, keys_dir: Path) -> bytes:
    """An object nothing references (a viewer rebuilding a broken xref may still find it)."""

    def change(w):
        w.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (PALSU) Tj ET"))

    return _timestamp(pdf, keys_dir, change)


def changed_content_with_timestamp(pdf: bytes, keys_dir: Path) -> bytes:
    """The page's content stream rewritten in the timestamp's revision."""

    def change(w):
        page_ref, _ = w.find_page_for_modification(0)
        contents = page_ref.get_object().raw_get("/Contents")
        ref = contents if isinstance(contents, generic.IndirectObject) else contents.raw_get(0)
        stream = ref.get_object()
        stream._data = stream.data + b"\nq 1 1 1 rg 60 600 340 60 re f Q"  # noqa: SLF001
        stream._encoded_data = None  # noqa: SLF001
        stream.pop("/Filter", None)
        w.mark_update(ref)

    return _timestamp(pdf, keys_dir, change)


def catalog_change_with_validation_data(pdf: bytes, keys_dir: Path) -> bytes:
    """Validation data (a DSS) added as an archive would, plus an /OpenAction in the catalog."""
    context = ValidationContext(
        trust_roots=[
            asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))
            for c in pki.load_trust_roots(keys_dir)
        ]
    )
    stamped = _timestamp(pdf, keys_dir)
    w = IncrementalPdfFileWriter(BytesIO(stamped))
    w.root[N("/OpenAction")] = generic.DictionaryObject(
        {N("/S"): N("/URI"), N("/URI"): generic.TextStringObject("https://contoh.invalid/")}
    )
    w.update_root()
    stamper = PdfTimeStamper(signing.make_timestamper(None, keys_dir))
    return stamper.timestamp_pdf(w, "sha256", validation_context=context).getvalue()


def _raw_revision(pdf: bytes, objects: dict[int, bytes], freed: tuple[int, ...] = ()) -> bytes:
    """An incremental update written by hand: ``objects`` (number -> body) and freed numbers."""
    reader = PdfFileReader(BytesIO(pdf))
    trailer = reader.trailer
    size = int(trailer["/Size"])
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    out = bytearray(pdf)
    offsets = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for num in sorted(offsets):
        out += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    for num in freed:
        out += b"%d 1\n0000000000 00001 f \n" % num
    root = trailer.raw_get("/Root")
    info = b" /Info %d 0 R" % trailer.raw_get("/Info").idnum if "/Info" in trailer else b""
    ident = trailer["/ID"][0].original_bytes.hex().encode()
    out += b"trailer\n<< /Size %d /Root %d 0 R%s /ID [<%s> <%s>] /Prev %d >>\n" % (
        max([size, *[n + 1 for n in objects]]),
        root.idnum,
        info,  # a PDF/A letter has no /Info
        ident,
        ident,
        prev,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def freed_content_stream(pdf: bytes, keys_dir: Path) -> bytes:
    """An update that frees the page's content stream (what viewers draw disappears)."""
    stamped = _timestamp(pdf, keys_dir)
    page = PdfFileReader(BytesIO(stamped)).root["/Pages"]["/Kids"][0]
    contents = page.raw_get("/Contents")
    ref = contents if isinstance(contents, generic.IndirectObject) else contents.raw_get(0)
    return _raw_revision(stamped, {}, freed=(ref.idnum,))


def unreferenced_object_alone(pdf: bytes, keys_dir: Path) -> bytes:
    """An update holding nothing but an object nothing references."""
    size = int(PdfFileReader(BytesIO(pdf)).trailer["/Size"])
    body = b"<< /Length 36 >>\nstream\nBT /F1 24 Tf 72 400 Td (PALSU) Tj ET\nendstream"
    return _raw_revision(pdf, {size: body})


def untrusted_tsa_timestamp(pdf: bytes, keys_dir: Path) -> bytes:
    """An archival timestamp by a self-made TSA whose names copy ours."""
    rogue = keys_dir.parent / f"{keys_dir.name}-rogue"
    pki.init_pki(rogue)
    ours = pki.load_tsa(keys_dir)[0].subject
    assert pki.load_tsa(rogue)[0].subject == ours  # the same names, another key
    return _timestamp(pdf, rogue)


FORGERIES = {
    "visible_timestamp_field": visible_timestamp_field,
    "annotation_with_timestamp": annotation_with_timestamp,
    "unreferenced_object_with_timestamp": unreferenced_object_with_timestamp,
    "changed_content_with_timestamp": changed_content_with_timestamp,
    "catalog_change_with_validation_data": catalog_change_with_validation_data,
    "freed_content_stream": freed_content_stream,
    "unreferenced_object_alone": unreferenced_object_alone,
    "untrusted_tsa_timestamp": untrusted_tsa_timestamp,
}


def genuine_archival_updates(pdf: bytes, keys_dir: Path) -> bytes:
    """What an archive does: a document timestamp, then validation data and another one."""
    context = ValidationContext(
        trust_roots=[
            asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))
            for c in pki.load_trust_roots(keys_dir)
        ]
    )
    stamped = _timestamp(pdf, keys_dir)
    w = IncrementalPdfFileWriter(BytesIO(stamped))
    stamper = PdfTimeStamper(signing.make_timestamper(None, keys_dir))
    return stamper.timestamp_pdf(w, "sha256", validation_context=context).getvalue()


def cli_verdict(path: Path, settings) -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", "verify", str(path)],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "SURATDESA_DATABASE_URL": settings.database_url,
            "SURATDESA_KEYS_DIR": str(settings.keys_dir),
        },
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.stdout, result.stderr
    return result.stdout.split()[0], result.returncode


def portal_verdicts(client: TestClient, pdf: bytes) -> tuple[dict, str]:
    api = client.post(
        "/api/public/verify", content=pdf, headers={"content-type": "application/pdf"}
    )
    assert api.status_code == 200, api.text
    page = client.post("/verify", files={"file": ("surat.pdf", pdf, "application/pdf")})
    assert page.status_code == 200, page.text
    return api.json(), page.text


@pytest.mark.parametrize("workflow_id", sorted(LETTERS))
def test_every_forgery_is_refused_by_every_face(
    workflow_id, settings, logins, passphrase, tmp_path
):
    client = TestClient(create_app(settings))
    staff = Staff(client, logins)
    letter = issue(staff, workflow_id, passphrase)
    genuine = letter["pdf"]

    for name, forge in [("genuine", None), ("archival", genuine_archival_updates)]:
        pdf = genuine if forge is None else forge(genuine, settings.keys_dir)
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(pdf)
        api, page = portal_verdicts(client, pdf)
        assert api["status"] == "VALID", (name, api["reasons"])
        assert "<strong>ASLI</strong>" in page and "TIDAK SAH" not in page
        assert cli_verdict(path, settings) == ("VALID", 0)

    for name, forge in FORGERIES.items():
        forged = forge(genuine, settings.keys_dir)
        assert forged.startswith(genuine) and len(forged) > len(genuine), name
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(forged)
        api, page = portal_verdicts(client, forged)
        assert api["status"] == "INVALID", (name, api)
        assert api["reasons"], name
        assert "<strong>TIDAK SAH</strong>" in page and "<strong>ASLI</strong>" not in page, name
        assert cli_verdict(path, settings) == ("INVALID", 1), name
