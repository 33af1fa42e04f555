"""What may follow the bytes of an issued letter: archival maintenance, nothing else.

DESIGN.md, Trust: a letter is genuine only if the file begins with exactly the bytes the registry
issued and every incremental update after them holds nothing but validation data (a DSS) and
document timestamps. This module decides the second half by construction, with its own strict
reader and an allow-list, never with a third-party difference analysis:

- every byte after the issued letter belongs to an object listed in its revision's
  cross-reference table (at exactly that offset), to that table, to its trailer, or to the
  ``startxref``/``%%EOF`` lines; nothing else, not even a comment, and no free entries;
- every object an update writes is either new and reachable from the DSS or from a new
  document-timestamp field, or is one of the few objects such an update has to rewrite (the
  catalog, the info dictionary, the AcroForm and its field list, a page and its annotation
  list, the XMP metadata stream), and those may differ from their previous version only in the
  keys the update needs;
- a document-timestamp field is invisible (``/Rect [0 0 0 0]``, no appearance, no action) and its
  value is a ``/DocTimeStamp`` whose signed range ends exactly where its revision ends.

Whether each document timestamp is intact and made by a trusted TSA is checked by the caller
(engine.trust.verification), which also cross-checks the timestamps found here with pyHanko's.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from io import BytesIO
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from engine.trust.pdf_reader import (
    _MAX_DEPTH,
    DocTimestamp,
    HexString,
    Name,
    Ref,
    Stream,
    UpdateRefused,
    _Reader,
    _Revision,
)

# --------------------------------------------------------------------------- the letter as issued


def _plain(obj: Any) -> Any:
    """pyHanko's object model as the plain values the strict reader produces."""
    if isinstance(obj, generic.IndirectObject):
        return Ref(obj.idnum, obj.generation)
    if isinstance(obj, generic.StreamObject):
        return Stream(_plain_dict(obj), bytes(obj.encoded_data))
    if isinstance(obj, generic.DictionaryObject):
        return _plain_dict(obj)
    if isinstance(obj, generic.ArrayObject):
        return [_plain(obj.raw_get(i)) for i in range(len(obj))]
    if isinstance(obj, generic.NameObject):
        return Name(str(obj))
    if isinstance(obj, generic.BooleanObject):
        return bool(obj.value)
    if isinstance(obj, generic.NullObject):
        return None
    if isinstance(obj, generic.TextStringObject):
        return bytes(obj.original_bytes)
    if isinstance(obj, generic.ByteStringObject):
        return bytes(obj)
    if isinstance(obj, generic.FloatObject):
        return Decimal(obj)
    if isinstance(obj, generic.NumberObject):
        return int(obj)
    raise UpdateRefused(f"Objek surat asli tidak dikenal: {type(obj).__name__}")


def _plain_dict(obj: generic.DictionaryObject) -> dict[str, Any]:
    return {str(k): _plain(obj.raw_get(k)) for k in obj}


def _comparable(value: Any) -> Any:
    """Hex and literal strings with the same bytes are the same string."""
    if isinstance(value, HexString):
        return value.value
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, Stream):
        return Stream(_comparable(value.dictionary), value.data)
    return value


class _IssuedLetter:
    """Objects of the letter as issued, read by pyHanko from the issued bytes only."""

    def __init__(self, issued: bytes) -> None:
        self.reader = PdfFileReader(BytesIO(issued), strict=True)
        trailer = self.reader.trailer
        self.trailer = {str(k): _plain(trailer.raw_get(k)) for k in trailer}
        m = list(re.finditer(rb"startxref[ \t\r\n\f]+(\d+)[ \t\r\n\f]+%%EOF", issued))
        if not m:
            raise UpdateRefused("Surat asli tidak memiliki penunjuk startxref")
        self.startxref = int(m[-1].group(1))
        self.pages = self._pages()

    def get(self, ref: Ref) -> Any | None:
        try:
            obj = generic.IndirectObject(ref.idnum, ref.generation, self.reader).get_object()
        except Exception:  # noqa: BLE001 - an object the letter does not have
            return None
        return None if isinstance(obj, generic.NullObject) else _plain(obj)

    def _pages(self) -> list[Ref]:
        root = self.reader.trailer.raw_get("/Root")
        catalog = root.get_object()
        pages: list[Ref] = []

        def walk(ref: generic.IndirectObject, depth: int) -> None:
            node = ref.get_object()
            if node.get("/Type") == "/Page":
                pages.append(Ref(ref.idnum, ref.generation))
            elif depth < _MAX_DEPTH:
                kids = node.get_object()["/Kids"]
                for i in range(len(kids)):
                    walk(kids.raw_get(i), depth + 1)

        walk(catalog.raw_get("/Pages"), 0)
        return pages


# --------------------------------------------------------------------------- the allow-list


@dataclass
class _View:
    """The document as of the previous revision: issued objects overlaid by accepted updates."""

    issued: _IssuedLetter
    written: dict[Ref, Any] = field(default_factory=dict)
    dss_streams: set[Ref] = field(default_factory=set)

    def get(self, ref: Ref) -> Any | None:
        if ref in self.written:
            return self.written[ref]
        return self.issued.get(ref)


class _RevisionCheck:
    def __init__(self, view: _View, revision: _Revision, size: int) -> None:
        self.view = view
        self.objects = {ref: obj.value for ref, obj in revision.objects.items()}
        self.spans = revision.objects
        self.size = size
        self.claimed: set[Ref] = set()
        for ref in self.objects:
            old = view.get(ref)
            if old is None and ref.idnum < size:
                raise UpdateRefused(f"Objek {ref} memakai nomor objek yang sudah pernah ada")

    def is_new(self, ref: Ref) -> bool:
        return ref in self.objects and self.view.get(ref) is None

    def old_new(self, ref: Ref) -> tuple[Any, Any]:
        """(previous value, value after this revision) of an existing object; claims it."""
        old = self.view.get(ref)
        if ref in self.objects:
            self.claimed.add(ref)
            return old, self.objects[ref]
        return old, old

    def new_object(self, ref: Any, what: str) -> Any:
        if not isinstance(ref, Ref) or not self.is_new(ref):
            raise UpdateRefused(f"{what} bukan objek baru pada pembaruan ini")
        if ref in self.claimed:
            raise UpdateRefused(f"Objek {ref} dirujuk dua kali")
        self.claimed.add(ref)
        return self.objects[ref]

    def resolve_pair(self, old_value: Any, new_value: Any, what: str) -> tuple[Any, Any]:
        """Old and new content of a value that is direct or an indirect reference."""
        old = self.view.get(old_value) if isinstance(old_value, Ref) else old_value
        if isinstance(new_value, Ref):
            if new_value == old_value:
                return old, self.old_new(new_value)[1]
            return old, self.new_object(new_value, what)
        return old, new_value


def _same_except(old: Any, new: Any, allowed: set[str], what: str) -> None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise UpdateRefused(f"{what} bukan kamus")
    for key in sorted(set(old) | set(new)):  # sorted: the same reason every time
        if key in allowed:
            continue
        if key not in new or key not in old or _comparable(old[key]) != _comparable(new[key]):
            raise UpdateRefused(f"{what} diubah setelah surat diterbitkan (kunci {key})")
    for key in sorted(allowed):
        if key in old and key not in new:
            raise UpdateRefused(f"{what}: kunci {key} dihapus setelah surat diterbitkan")


def _extension(check: _RevisionCheck, old_value: Any, new_value: Any, what: str) -> list[Ref]:
    """The items appended to an array (direct or indirect); the old items must stay as they were."""
    if new_value is None:
        if old_value is None:
            return []
        raise UpdateRefused(f"{what} dihapus setelah surat diterbitkan")
    old, new = check.resolve_pair(old_value, new_value, what)
    old = [] if old is None else old
    if not isinstance(old, list) or not isinstance(new, list):
        raise UpdateRefused(f"{what} bukan larik")
    if _comparable(new[: len(old)]) != _comparable(old):
        raise UpdateRefused(f"{what} diubah setelah surat diterbitkan")
    added = new[len(old) :]
    if not all(isinstance(r, Ref) for r in added):
        raise UpdateRefused(f"{what}: isi baru bukan rujukan objek")
    return added


_CATALOG_CHANGES = {"/DSS", "/Extensions", "/AcroForm"}
_METADATA_KEYS = {"/Type", "/Subtype", "/Length", "/Filter"}
_METADATA_MAX = 256 * 1024
_INFO_CHANGES = {"/ModDate", "/Producer"}
_TRAILER_KEYS = {"/Size", "/Root", "/Info", "/ID", "/Prev"}
_DSS_KEYS = {"/Type", "/Certs", "/OCSPs", "/CRLs", "/VRI"}
_VRI_KEYS = {"/Type", "/Cert", "/OCSP", "/CRL", "/TU", "/TS"}
_FIELD_KEYS = {"/FT", "/T", "/TU", "/V", "/Type", "/Subtype", "/F", "/Rect", "/P"}
_DOC_TS_KEYS = {"/Type", "/Filter", "/SubFilter", "/Contents", "/ByteRange", "/Prop_Build"}
_STREAM_KEYS = {"/Length", "/Filter"}
_DER_LOADERS = {
    "/Certs": asn1_x509.Certificate,
    "/Cert": asn1_x509.Certificate,
    "/OCSPs": asn1_ocsp.OCSPResponse,
    "/OCSP": asn1_ocsp.OCSPResponse,
    "/CRLs": asn1_crl.CertificateList,
    "/CRL": asn1_crl.CertificateList,
}


def _check_trailer(trailer: dict, previous: dict, prev_xref: int, size: int) -> int:
    extra = set(trailer) - _TRAILER_KEYS
    if extra:
        raise UpdateRefused(f"Trailer pembaruan memuat kunci yang tidak diizinkan: {min(extra)}")
    for key in ("/Root", "/Info"):
        if trailer.get(key) != previous.get(key):
            raise UpdateRefused(f"Trailer pembaruan mengganti {key}")
    if trailer.get("/Prev") != prev_xref:
        raise UpdateRefused("Trailer pembaruan tidak menyambung ke revisi sebelumnya (/Prev)")
    old_id, new_id = previous.get("/ID"), trailer.get("/ID")
    if old_id is not None:
        if not (isinstance(new_id, list) and len(new_id) == 2):
            raise UpdateRefused("Trailer pembaruan tanpa /ID")
        if _comparable(new_id[0]) != _comparable(old_id[0]):
            raise UpdateRefused("Trailer pembaruan mengganti /ID dokumen")
    new_size = trailer.get("/Size")
    if not isinstance(new_size, int) or new_size < size:
        raise UpdateRefused("Trailer pembaruan memuat /Size yang tidak sah")
    return new_size


def _check_stream(value: Any, kind: str, ref: Ref) -> None:
    if not isinstance(value, Stream):
        raise UpdateRefused(f"Data validasi {ref} bukan stream")
    extra = set(value.dictionary) - _STREAM_KEYS
    if extra:
        raise UpdateRefused(f"Data validasi {ref} memuat kunci {min(extra)}")
    data = value.data
    codec = value.dictionary.get("/Filter")
    try:
        if codec == "/FlateDecode":
            data = zlib.decompress(data)
        elif codec is not None:
            raise UpdateRefused(f"Data validasi {ref} memakai filter {codec}")
        parsed = _DER_LOADERS[kind].load(data, strict=True)
        parsed.native  # noqa: B018 - parse it whole: anything that is not DER of its kind fails
    except UpdateRefused:
        raise
    except Exception as e:  # noqa: BLE001
        raise UpdateRefused(f"Data validasi {ref} bukan {kind[1:]} yang sah") from e


def _check_stream_refs(check: _RevisionCheck, refs: Any, kind: str, what: str) -> None:
    if not isinstance(refs, list) or not all(isinstance(r, Ref) for r in refs):
        raise UpdateRefused(f"{what}: daftar {kind} bukan larik rujukan")
    for ref in refs:
        if ref in check.view.dss_streams:  # validation data an earlier update already added
            continue
        _check_stream(check.new_object(ref, f"{what} {kind}"), kind, ref)
        check.view.dss_streams.add(ref)


def _check_dss(check: _RevisionCheck, old_value: Any, new_value: Any) -> None:
    if new_value is None or (new_value == old_value and not _rewritten(check, new_value)):
        return
    _, dss = check.resolve_pair(old_value, new_value, "DSS")
    if not isinstance(dss, dict) or set(dss) - _DSS_KEYS or dss.get("/Type", "/DSS") != "/DSS":
        raise UpdateRefused("DSS memuat isi yang tidak diizinkan")
    for kind in ("/Certs", "/OCSPs", "/CRLs"):
        if kind in dss:
            _check_stream_refs(check, dss[kind], kind, "DSS")
    vri = dss.get("/VRI", {})
    if isinstance(vri, Ref):
        vri = check.new_object(vri, "DSS /VRI")
    if not isinstance(vri, dict):
        raise UpdateRefused("DSS /VRI bukan kamus")
    for key, entry in vri.items():
        if isinstance(entry, Ref):
            entry = check.new_object(entry, f"VRI {key}")
        bad_type = entry.get("/Type", "/VRI") != "/VRI" if isinstance(entry, dict) else True
        if bad_type or set(entry) - _VRI_KEYS:
            raise UpdateRefused(f"VRI {key} memuat isi yang tidak diizinkan")
        for kind in ("/Cert", "/OCSP", "/CRL"):
            if kind in entry:
                _check_stream_refs(check, entry[kind], kind, f"VRI {key}")
        if "/TS" in entry:
            raise UpdateRefused(f"VRI {key} memuat /TS")
        if "/TU" in entry and not isinstance(entry["/TU"], bytes | HexString):
            raise UpdateRefused(f"VRI {key}: /TU bukan tanggal")


def _rewritten(check: _RevisionCheck, value: Any) -> bool:
    return isinstance(value, Ref) and value in check.objects


def _direct_only(value: Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH or isinstance(value, Ref | Stream):
        return False
    if isinstance(value, dict):
        return all(_direct_only(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_direct_only(v, depth + 1) for v in value)
    return True


def _check_timestamp_field(
    check: _RevisionCheck, ref: Ref, page: Ref, revision: _Revision
) -> DocTimestamp:
    widget = check.new_object(ref, f"Anotasi {ref}")
    if not isinstance(widget, dict) or set(widget) - _FIELD_KEYS:
        raise UpdateRefused(f"Anotasi baru {ref} bukan kolom stempel waktu dokumen")
    rect = widget.get("/Rect")
    if (
        widget.get("/FT") != "/Sig"
        or widget.get("/Subtype") != "/Widget"
        or widget.get("/Type", "/Annot") != "/Annot"
        or widget.get("/P", page) != page
        or not isinstance(rect, list)
        or len(rect) != 4
        or any(not isinstance(x, int | Decimal) or x != 0 for x in rect)
        or not isinstance(widget.get("/F", 0), int)
    ):
        raise UpdateRefused(f"Kolom baru {ref} bukan kolom stempel waktu yang tak terlihat")
    sig_ref = widget.get("/V")
    sig = check.new_object(sig_ref, f"Nilai kolom {ref}")
    if (
        not isinstance(sig, dict)
        or set(sig) - _DOC_TS_KEYS
        or sig.get("/Type") != "/DocTimeStamp"
        or sig.get("/SubFilter") != "/ETSI.RFC3161"
        or not isinstance(sig.get("/Contents"), HexString)
        or not _direct_only(sig.get("/Prop_Build", {}))
    ):
        raise UpdateRefused(f"Kolom baru {ref} tidak berisi stempel waktu dokumen")
    byte_range = sig.get("/ByteRange")
    span = revision.objects[sig_ref]
    if not (
        isinstance(byte_range, list)
        and len(byte_range) == 4
        and all(isinstance(x, int) for x in byte_range)
        and byte_range[0] == 0
        and span.start < byte_range[1] < byte_range[2] < span.end
        and byte_range[2] + byte_range[3] == revision.end
    ):
        raise UpdateRefused(f"Stempel waktu dokumen {sig_ref} tidak mencakup revisinya")
    return DocTimestamp(sig_ref, revision.end)


def _check_metadata(check: _RevisionCheck, ref: Any) -> None:
    """The catalog's XMP metadata stream, if this revision rewrites it in place (pyHanko does on
    every update of a PDF/A file): still an XMP packet in a stream of type /Metadata, /XML,
    with nothing else in its dictionary. The catalog keeps the same reference (its /Metadata
    may not change), and no page draws metadata, so this cannot change what the letter shows."""
    if not isinstance(ref, Ref) or ref not in check.objects:
        return
    _, new = check.old_new(ref)
    if not isinstance(new, Stream):
        raise UpdateRefused(f"Metadata {ref} bukan stream")
    d = new.dictionary
    if set(d) - _METADATA_KEYS or d.get("/Type") != "/Metadata" or d.get("/Subtype") != "/XML":
        raise UpdateRefused(f"Metadata {ref} memuat isi yang tidak diizinkan")
    data = new.data
    try:
        if d.get("/Filter") == "/FlateDecode":
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, _METADATA_MAX + 1)
        elif d.get("/Filter") is not None:
            raise UpdateRefused(f"Metadata {ref} memakai filter {d['/Filter']}")
    except zlib.error as e:
        raise UpdateRefused(f"Metadata {ref} rusak") from e
    packet = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if len(data) > _METADATA_MAX or not packet.startswith((b"<?xpacket", b"<x:xmpmeta")):
        raise UpdateRefused(f"Metadata {ref} bukan paket XMP")


def _check_revision(view: _View, revision: _Revision, previous: dict, prev_xref: int) -> tuple:
    size = previous.get("/Size", 0)
    new_size = _check_trailer(revision.trailer, previous, prev_xref, size)
    check = _RevisionCheck(view, revision, size)
    if any(ref.idnum >= new_size for ref in check.objects):
        raise UpdateRefused("Objek baru di luar /Size trailer")

    root = revision.trailer["/Root"]
    old_catalog, catalog = check.old_new(root)
    _same_except(old_catalog, catalog, _CATALOG_CHANGES, "Katalog dokumen")
    if "/Extensions" in catalog and not _direct_only(catalog["/Extensions"]):
        raise UpdateRefused("Katalog dokumen: /Extensions tidak sah")

    # The AcroForm may only gain fields (and the signature flags).
    old_form, form = check.resolve_pair(
        old_catalog.get("/AcroForm"), catalog.get("/AcroForm"), "AcroForm"
    )
    _same_except(old_form, form, {"/Fields", "/SigFlags"}, "Formulir dokumen (AcroForm)")
    if form.get("/SigFlags", 0) not in (0, 1, 2, 3):
        raise UpdateRefused("Formulir dokumen: /SigFlags tidak sah")
    new_fields = _extension(check, old_form.get("/Fields"), form.get("/Fields"), "Daftar kolom")

    # A page may only gain annotations: the widgets of those new fields.
    new_widgets: dict[Ref, Ref] = {}
    for page in view.issued.pages:
        old_page, new_page = check.old_new(page)
        _same_except(old_page, new_page, {"/Annots"}, f"Halaman {page}")
        for ref in _extension(check, old_page.get("/Annots"), new_page.get("/Annots"), "Anotasi"):
            if ref in new_widgets:
                raise UpdateRefused(f"Anotasi {ref} dipasang dua kali")
            new_widgets[ref] = page
    if sorted(new_fields) != sorted(new_widgets) or len(set(new_fields)) != len(new_fields):
        raise UpdateRefused("Anotasi baru yang bukan kolom stempel waktu dokumen")
    stamps = [_check_timestamp_field(check, r, new_widgets[r], revision) for r in new_fields]
    if len(stamps) > 1:
        raise UpdateRefused("Lebih dari satu stempel waktu dokumen dalam satu revisi")

    info = revision.trailer.get("/Info")
    if isinstance(info, Ref):
        old_info, new_info = check.old_new(info)
        _same_except(old_info, new_info, _INFO_CHANGES, "Informasi dokumen")
        for key in _INFO_CHANGES & set(new_info):
            if not isinstance(new_info[key], bytes | HexString):
                raise UpdateRefused(f"Informasi dokumen: {key} bukan teks")

    _check_dss(check, old_catalog.get("/DSS"), catalog.get("/DSS"))
    _check_metadata(check, catalog.get("/Metadata"))

    for ref in sorted(set(check.objects) - check.claimed):
        if check.is_new(ref):
            raise UpdateRefused(
                f"Objek baru {ref} tidak dirujuk oleh data validasi atau stempel waktu dokumen"
            )
        raise UpdateRefused(f"Objek {ref} dari surat asli diubah setelah diterbitkan")
    return stamps, new_size


def check_updates(pdf: bytes, issued_end: int) -> list[DocTimestamp]:
    """Check every incremental update after ``pdf[:issued_end]`` (the letter as issued) against
    the allow-list above; the document timestamps they add, oldest first. Raises
    UpdateRefused with a reason in Indonesian for anything else."""
    reader = _Reader(pdf, issued_end)
    if reader.at_end():
        return []
    view = _View(_IssuedLetter(pdf[:issued_end]))
    previous, prev_xref = view.issued.trailer, view.issued.startxref
    stamps: list[DocTimestamp] = []
    while not reader.at_end():
        revision = reader.revision()
        found, size = _check_revision(view, revision, previous, prev_xref)
        stamps += found
        view.written.update({ref: obj.value for ref, obj in revision.objects.items()})
        previous = {**revision.trailer, "/Size": size}
        prev_xref = revision.xref_offset
    return stamps
