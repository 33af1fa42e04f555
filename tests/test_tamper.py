"""Tampered copies of a genuine issued letter, uploaded to the portal: each is rejected with a
reason, while the genuine letter (also with an archival document timestamp) is accepted."""

from __future__ import annotations

import re
from io import BytesIO

import pypdfium2
import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import PdfTimeStamper

from engine.trust import pki, signing
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def issue_letter(client: TestClient, logins, passphrase: str) -> dict:
    staff = Staff(client, logins)
    nik = logins.sample_niks[GROGOL][0]
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": nik},
            "data": {"keperluan": "Persyaratan melamar pekerjaan"},
        },
    )
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("grogol", r.json())
    signed = staff.sign("head.grogol", request, passphrase)
    assert signed.status_code == 200, signed.text
    letter = signed.json()["letter"]
    letter["pdf"] = staff.get("operator.grogol", letter["pdf_url"]).content
    letter["request_id"] = request["id"]
    return letter


@pytest.fixture
def genuine(client, logins, passphrase) -> bytes:
    return issue_letter(client, logins, passphrase)["pdf"]


def upload(client: TestClient, pdf: bytes) -> dict:
    r = client.post("/api/public/verify", content=pdf, headers={"content-type": "application/pdf"})
    assert r.status_code == 200, r.text
    return r.json()


def _incremental(pdf: bytes, change) -> bytes:
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    change(w)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def paint_text(pdf: bytes) -> bytes:
    def change(w):
        cover = b"1 1 1 rg 60 700 400 40 re f BT /F1 20 Tf 0 0 0 rg 70 710 Td (LUNAS) Tj ET"
        w.add_stream_to_page(0, w.add_object(generic.StreamObject(stream_data=cover)))

    return _incremental(pdf, change)


def annotation_overlay(pdf: bytes) -> bytes:
    def change(w):
        page_ref, _ = w.find_page_for_modification(0)
        page = page_ref.get_object()
        annot = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/FreeText"),
                generic.NameObject("/Rect"): generic.ArrayObject(
                    [generic.FloatObject(v) for v in (60, 600, 400, 650)]
                ),
                generic.NameObject("/Contents"): generic.TextStringObject("NIK 3311000000000000"),
                generic.NameObject("/DA"): generic.TextStringObject("/Helv 18 Tf 0 g"),
            }
        )
        annots = page.get("/Annots")
        ref = w.add_object(annot)
        if annots is None:
            page[generic.NameObject("/Annots")] = generic.ArrayObject([ref])
        else:
            annots.append(ref)
        w.update_container(page)

    return _incremental(pdf, change)


def second_signature(pdf: bytes, tmp_path, monkeypatch) -> bytes:
    """A new visible signature field over the page, signed with another CA's key. pyHanko
    refuses to sign a document certified "no changes"; an attacker removes that check."""
    import pyhanko.sign.validation

    monkeypatch.setattr(pyhanko.sign.validation, "read_certification_data", lambda _r: None)
    pki.init_pki(tmp_path)
    p12 = tmp_path / "other.p12"
    p12.write_bytes(issue_test_signer(tmp_path).p12)
    simple = signers.SimpleSigner.load_pkcs12(str(p12), passphrase=PASSPHRASE.encode())
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(field_name="Persetujuan")
    spec = fields.SigFieldSpec("Persetujuan", box=(60, 500, 400, 700), on_page=0)
    return signers.PdfSigner(meta, simple, new_field_spec=spec).sign_pdf(w).getvalue()


def _byte_range(pdf: bytes) -> tuple[int, int, int, int]:
    emb = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    return tuple(int(x) for x in emb.byte_range)  # type: ignore[return-value]


def emptied_contents(pdf: bytes) -> bytes:
    _, a, b, _ = _byte_range(pdf)
    return pdf[:a] + b"<" + b"0" * (b - a - 2) + b">" + pdf[b:]


def broken_byte_range(pdf: bytes) -> bytes:
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert m is not None
    s0, l0, s1, l1 = (int(x) for x in m.groups())
    forged = f"/ByteRange [{s0} {l0} {s1} {l1 - 100}]".encode()
    forged = forged.ljust(len(m.group(0)))
    return pdf[: m.start()] + forged + pdf[m.end() :]


def wrapped(pdf: bytes) -> bytes:
    """Signature wrapping: new content hidden in the unsigned /Contents gap, made reachable by
    an appended revision whose cross-reference points into the gap."""
    _, a, b, _ = _byte_range(pdf)
    reader = PdfFileReader(BytesIO(pdf))
    page_ref = reader.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    gap = pdf[a:b]
    used = len(gap[1:-1].rstrip(b"0")) + 1
    used += used % 2
    body = b"BT /F1 20 Tf 70 710 Td (LUNAS) Tj ET"
    obj_no = reader.trailer["/Size"]
    hidden = b">\n%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n<" % (
        obj_no,
        len(body),
        body,
    )
    assert used + len(hidden) + 1 < len(gap)
    new_gap = gap[: used + 1] + hidden + gap[used + 1 + len(hidden) :]
    hidden_offset = a + used + 2
    out = bytearray(pdf[:a] + new_gap + pdf[b:])
    contents = page.raw_get("/Contents")
    items = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    stream = BytesIO()
    page_offset = len(out)
    new_page = page.__class__(page)
    new_page[generic.NameObject("/Contents")] = generic.ArrayObject(
        [*items, generic.IndirectObject(obj_no, 0, reader)]
    )
    new_page.write_to_stream(stream)
    out += b"\n%d %d obj\n" % (page_ref.idnum, page_ref.generation) + stream.getvalue()
    out += b"\nendobj\n"
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    xref_at = len(out)
    out += b"xref\n%d 1\n%010d %05d n \n%d 1\n%010d 00000 n \n" % (
        page_ref.idnum,
        page_offset + 1,
        page_ref.generation,
        obj_no,
        hidden_offset,
    )
    root = reader.trailer.raw_get("/Root")
    out += b"trailer\n<< /Size %d /Root %d %d R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        obj_no + 1,
        root.idnum,
        root.generation,
        prev,
        xref_at,
    )
    return bytes(out)


def moved_ranges(pdf: bytes) -> bytes:
    """The second signed range shifted behind inserted content."""
    _, _, b, _ = _byte_range(pdf)
    return pdf[:b] + b"\n% LUNAS\n" + pdf[b:]


def full_rewrite(pdf: bytes) -> bytes:
    doc = pypdfium2.PdfDocument(pdf)
    out = BytesIO()
    doc.save(out)
    return out.getvalue()


def one_byte_changed(pdf: bytes) -> bytes:
    pos = pdf.index(b"/Lang")  # the catalog (a PDF/A letter has no /Info with /Creator)
    return pdf[:pos] + b"/Lanh" + pdf[pos + 5 :]


TAMPERS = {
    "paint_text": paint_text,
    "annotation_overlay": annotation_overlay,
    "appended_bytes": lambda pdf: pdf + b"\n% tambahan\n",
    "byte_in_signed_range": one_byte_changed,
    "full_rewrite": full_rewrite,
    "emptied_contents": emptied_contents,
    "broken_byte_range": broken_byte_range,
    "signature_wrapping": wrapped,
    "moved_ranges": moved_ranges,
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_portal_rejects_tampered_letter(name, client, genuine):
    forged = TAMPERS[name](genuine)
    assert forged != genuine
    report = upload(client, forged)
    assert report["status"] == "INVALID", (name, report)
    assert report["valid"] is False
    assert report["reasons"] and all(isinstance(r, str) and r for r in report["reasons"])


def test_portal_rejects_a_second_signature_by_another_key(client, genuine, tmp_path, monkeypatch):
    report = upload(client, second_signature(genuine, tmp_path, monkeypatch))
    assert report["status"] == "INVALID", report
    assert any("tanda tangan lain" in r for r in report["reasons"]), report["reasons"]


def test_painted_text_names_the_change(client, genuine):
    report = upload(client, paint_text(genuine))
    assert any("diubah setelah ditandatangani" in r for r in report["reasons"])
    assert report["signatures"][0]["changes"] == "ada perubahan: isi dokumen diubah"


def test_wrapping_is_named(client, genuine):
    reasons = upload(client, wrapped(genuine))["reasons"]
    assert reasons


def test_genuine_letter_is_accepted_with_details(client, genuine, settings):
    report = upload(client, genuine)
    assert report["status"] == "VALID", report["reasons"]
    sig = report["signatures"][0]
    assert sig["chain"] == [
        sig["signer_cn"],
        "CA Penerbit Surat Desa Kabupaten Sukoharjo",
        "Root CA Pemerintah Kabupaten Sukoharjo",
    ]
    assert sig["certification"] == "sertifikasi: tidak boleh ada perubahan"
    # issued as PAdES B-LTA: the DSS and a document timestamp follow the certified revision
    assert sig["changes"] == "hanya pembaruan arsip (data validasi / stempel waktu dokumen)"
    assert sig["timestamp_time"] and sig["tsa_name"]
    assert "tidak dicabut" in sig["revocation"] and report["revocation_checked"]
    assert report["registry"]["status"] == "active"
    assert report["registry"]["url"].startswith(settings.public_url + "/v/")


def test_archival_timestamp_is_accepted(client, genuine, settings):
    ts = signing.make_timestamper(None, settings.keys_dir)
    # The writer our renewal uses: it leaves the PDF/A XMP metadata as issued (stock pyHanko
    # rewrites it, which pdf_updates refuses: see tests/test_pdfa.py).
    extended = PdfTimeStamper(ts).timestamp_pdf(signing._KeepMetaWriter(BytesIO(genuine)), "sha256")
    report = upload(client, extended.getvalue())
    assert report["status"] == "VALID", report["reasons"]
    kinds = ["signature", "document_timestamp", "document_timestamp"]  # B-LTA at issue + this
    assert [s["kind"] for s in report["signatures"]] == kinds
    assert report["signatures"][0]["changes"].startswith("hanya pembaruan arsip")
