"""engine.trust.pdf_updates: what may follow the bytes of an issued letter, read by our own strict
reader. Hand-written updates probe the reader itself (the forgery tests in test_forgeries.py
cover whole attacks through every face)."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper

from engine.trust import pki, signing
from engine.trust.pdf_updates import UpdateRefused, check_updates
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer, one_page_pdf


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d)
    return d


@pytest.fixture(scope="module")
def issued(keys) -> bytes:
    signer = signing.load_signer(issue_test_signer(keys).p12, PASSPHRASE, keys_dir=keys)
    ts = signing.make_timestamper(None, keys)
    return signing.sign_letter(one_page_pdf(), signer, ts, reason="r", location="l")


@pytest.fixture(scope="module")
def stamped(issued, keys) -> bytes:
    w = IncrementalPdfFileWriter(BytesIO(issued))
    return (
        PdfTimeStamper(signing.make_timestamper(None, keys)).timestamp_pdf(w, "sha256").getvalue()
    )


def trailer_bits(pdf: bytes) -> tuple[int, bytes, int]:
    reader = PdfFileReader(BytesIO(pdf))
    root = reader.trailer.raw_get("/Root")
    info = reader.trailer.raw_get("/Info")
    ident = reader.trailer["/ID"][0].original_bytes.hex().encode()
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    head = b"/Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] /Prev %d" % (
        root.idnum,
        info.idnum,
        ident,
        ident,
        prev,
    )
    return int(reader.trailer["/Size"]), head, root.idnum


def revision(pdf: bytes, body: bytes, xref: bytes, trailer_extra: bytes = b"", size=None) -> bytes:
    """``pdf`` + ``body`` + an xref section whose offsets are given relative to the body start
    as ``{+N}`` placeholders."""
    start = len(pdf)
    xref = re.sub(rb"\{\+(\d+)\}", lambda m: b"%010d" % (start + int(m.group(1))), xref)
    old_size, head, _ = trailer_bits(pdf)
    xref_at = start + len(body)
    trailer = b"trailer\n<< /Size %d %s%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size or old_size,
        head,
        trailer_extra,
        xref_at,
    )
    return pdf + body + b"xref\n" + xref + trailer


def refused(pdf: bytes, issued: bytes) -> str:
    with pytest.raises(UpdateRefused) as e:
        check_updates(pdf, len(issued))
    return str(e.value)


def test_the_issued_letter_alone_and_a_genuine_timestamp_pass(issued, stamped):
    assert check_updates(issued, len(issued)) == []
    (stamp,) = check_updates(stamped, len(issued))
    assert stamp.revision_end == len(stamped)


def test_an_empty_update_passes(issued):
    assert check_updates(revision(issued, b"", b"0 1\n0000000000 65535 f \n"), len(issued)) == []


def test_an_object_hidden_outside_the_xref_is_refused(issued):
    size, _, _ = trailer_bits(issued)
    body = b"%d 0 obj\n(PALSU)\nendobj\n" % size
    pdf = revision(issued, body, b"0 1\n0000000000 65535 f \n", size=size + 1)
    assert "tidak tercatat di tabel xref" in refused(pdf, issued)


def test_an_xref_entry_pointing_elsewhere_is_refused(issued):
    size, _, _ = trailer_bits(issued)
    body = b"%d 0 obj\n(PALSU)\nendobj\n" % size
    xref = b"0 1\n0000000000 65535 f \n%d 1\n{+3} 00000 n \n" % size
    assert "tidak menunjuk objeknya" in refused(revision(issued, body, xref, size=size + 1), issued)


def test_a_comment_in_an_update_is_refused(issued):
    pdf = revision(issued, b"% LUNAS\n", b"0 1\n0000000000 65535 f \n")
    assert "komentar" in refused(pdf, issued)


def test_duplicate_keys_are_refused(issued):
    _, _, root = trailer_bits(issued)
    catalog = PdfFileReader(BytesIO(issued)).root
    pages = catalog.raw_get("/Pages")
    body = b"%d 0 obj\n<< /Type /Catalog /Pages %d 0 R /Pages %d 0 R >>\nendobj\n" % (
        root,
        pages.idnum,
        pages.idnum,
    )
    xref = b"0 1\n0000000000 65535 f \n%d 1\n{+0} 00000 n \n" % root
    assert "dua kali" in refused(revision(issued, body, xref), issued)


def test_a_trailer_with_a_hybrid_xref_or_encryption_is_refused(issued):
    for extra in (b" /XRefStm 10", b" /Encrypt 3 0 R"):
        pdf = revision(issued, b"", b"0 1\n0000000000 65535 f \n", trailer_extra=extra)
        assert "tidak diizinkan" in refused(pdf, issued)


def test_an_object_under_another_generation_is_refused(issued):
    info = PdfFileReader(BytesIO(issued)).trailer.raw_get("/Info")
    body = b"%d 1 obj\n<< /Title (PALSU) >>\nendobj\n" % info.idnum
    xref = b"0 1\n0000000000 65535 f \n%d 1\n{+0} 00001 n \n" % info.idnum
    assert refused(revision(issued, body, xref), issued)


def test_a_changed_object_of_the_letter_is_refused(issued):
    reader = PdfFileReader(BytesIO(issued))
    info = reader.trailer.raw_get("/Info")
    body = b"%d 0 obj\n<< /Title (PALSU) >>\nendobj\n" % info.idnum
    xref = b"0 1\n0000000000 65535 f \n%d 1\n{+0} 00000 n \n" % info.idnum
    reason = refused(revision(issued, body, xref), issued)
    assert reason.startswith("Informasi dokumen diubah setelah surat diterbitkan"), reason


def test_a_second_document_timestamp_after_the_first_passes(stamped, issued, keys):
    w = IncrementalPdfFileWriter(BytesIO(stamped))
    twice = PdfTimeStamper(signing.make_timestamper(None, keys)).timestamp_pdf(w, "sha256")
    stamps = check_updates(twice.getvalue(), len(issued))
    assert [s.revision_end for s in stamps] == [len(stamped), len(twice.getvalue())]


def test_garbage_after_the_last_update_is_refused(stamped, issued):
    assert refused(stamped + b"junk", issued)
