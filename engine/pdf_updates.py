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
  list), and those may differ from their previous version only in the keys the update needs;
- a document-timestamp field is invisible (``/Rect [0 0 0 0]``, no appearance, no action) and its
  value is a ``/DocTimeStamp`` whose signed range ends exactly where its revision ends.

Whether each document timestamp is intact and made by a trusted TSA is checked by the caller
(engine.verification), which also cross-checks the timestamps found here with pyHanko's.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from io import BytesIO
from typing import Any, NamedTuple

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader


class UpdateRefused(Exception):
    """An update after the issued letter that is not pure archival maintenance (Indonesian)."""


class Ref(NamedTuple):
    idnum: int
    generation: int

    def __str__(self) -> str:
        return f"{self.idnum} {self.generation} R"


class Name(str):
    """A PDF name, kept with its leading slash (``/Type``)."""


@dataclass(frozen=True)
class HexString:
    value: bytes


@dataclass(frozen=True)
class Stream:
    dictionary: dict[str, Any]
    data: bytes


@dataclass(frozen=True)
class DocTimestamp:
    """A document timestamp appended after the letter: its signature dictionary and the end
    of the revision that holds it (where its signed byte range must end)."""

    ref: Ref
    revision_end: int


@dataclass
class _Object:
    ref: Ref
    value: Any
    start: int
    end: int


@dataclass
class _Revision:
    objects: dict[Ref, _Object]
    xref_offset: int
    trailer: dict[str, Any]
    end: int


# --------------------------------------------------------------------------- strict reader

_WHITESPACE = b" \t\r\n\f"  # NUL is whitespace to the spec, but never in what we accept
_DELIMITERS = b"()<>[]{}/%"
_NUMBER = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)")
_INT = re.compile(rb"\d+")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_REFERENCE = re.compile(rb"(\d+)[ \t\r\n\f]+(\d+)[ \t\r\n\f]+R(?=[ \t\r\n\f()<>\[\]{}/%]|\Z)")
_OCTAL = re.compile(rb"[0-7]{1,3}")
_HEX_BODY = re.compile(rb"[0-9A-Fa-f \t\r\n\f]*")
_LITERAL_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}
_MAX_DEPTH = 32


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def fail(self, what: str) -> UpdateRefused:
        return UpdateRefused(f"Pembaruan setelah surat diterbitkan tidak dapat dibaca: {what}")

    def skip_ws(self) -> None:
        data, pos = self.data, self.pos
        while pos < len(data) and data[pos] in _WHITESPACE:
            pos += 1
        if pos < len(data) and data[pos] == ord("%") and not data.startswith(b"%%EOF", pos):
            raise self.fail(f"komentar di posisi {pos}")
        self.pos = pos

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.data)

    def peek_keyword(self, word: bytes) -> bool:
        self.skip_ws()
        end = self.pos + len(word)
        return self.data.startswith(word, self.pos) and (
            end >= len(self.data) or self.data[end] in _WHITESPACE + _DELIMITERS
        )

    def keyword(self, word: bytes) -> None:
        if not self.peek_keyword(word):
            raise self.fail(f"'{word.decode()}' diharapkan di posisi {self.pos}")
        self.pos += len(word)

    def integer(self) -> int:
        self.skip_ws()
        m = _INT.match(self.data, self.pos)
        if not m or len(m.group()) > 10:
            raise self.fail(f"bilangan bulat diharapkan di posisi {self.pos}")
        self.pos = m.end()
        return int(m.group())

    def value(self, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail("struktur terlalu dalam")
        self.skip_ws()
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise self.fail("berkas berakhir di tengah objek")
        c = data[pos]
        if data.startswith(b"<<", pos):
            return self._dictionary(depth)
        if c == ord("<"):
            end = data.find(b">", pos)
            if end < 0 or not _HEX_BODY.fullmatch(data, pos + 1, end):
                raise self.fail(f"string heksadesimal rusak di posisi {pos}")
            digits = re.sub(rb"\s", b"", data[pos + 1 : end])
            self.pos = end + 1
            return HexString(bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode()))
        if c == ord("["):
            self.pos += 1
            items = []
            while True:
                self.skip_ws()
                if self.data.startswith(b"]", self.pos):
                    self.pos += 1
                    return items
                items.append(self.value(depth + 1))
        if c == ord("("):
            return self._literal()
        if c == ord("/"):
            return self._name()
        for word, result in ((b"true", True), (b"false", False), (b"null", None)):
            if self.peek_keyword(word):
                self.pos += len(word)
                return result
        m = _NUMBER.match(data, pos)
        if m is None:
            raise self.fail(f"nilai tidak dikenal di posisi {pos}")
        text = m.group()
        if b"." not in text:
            rm = _REFERENCE.match(data, pos)
            if rm:
                self.pos = rm.end()
                return Ref(int(rm.group(1)), int(rm.group(2)))
            self.pos = m.end()
            return int(text)
        try:
            number = Decimal(text.decode())
        except InvalidOperation as e:
            raise self.fail(f"bilangan rusak di posisi {pos}") from e
        self.pos = m.end()
        return number

    def _dictionary(self, depth: int) -> dict[str, Any]:
        self.pos += 2
        result: dict[str, Any] = {}
        while True:
            self.skip_ws()
            if self.data.startswith(b">>", self.pos):
                self.pos += 2
                return result
            if not self.data.startswith(b"/", self.pos):
                raise self.fail(f"nama kunci diharapkan di posisi {self.pos}")
            key = self._name()
            if key in result:
                raise self.fail(f"kunci {key} muncul dua kali")
            result[key] = self.value(depth + 1)

    def _name(self) -> Name:
        data, start = self.data, self.pos + 1
        end = start
        while end < len(data) and data[end] not in _WHITESPACE + _DELIMITERS and data[end]:
            end += 1
        raw = data[start:end]
        if b"#" in raw:
            raise self.fail(f"nama dengan kode # di posisi {self.pos}")
        self.pos = end
        return Name("/" + raw.decode("latin-1"))

    def _literal(self) -> bytes:
        data, pos = self.data, self.pos + 1
        out = bytearray()
        depth = 1
        while pos < len(data):
            c = data[pos]
            if c == ord("\\"):
                pos += 1
                if pos >= len(data):
                    break
                e = data[pos]
                if e in _LITERAL_ESCAPES:
                    out += _LITERAL_ESCAPES[e]
                    pos += 1
                elif ord("0") <= e <= ord("7"):
                    m = _OCTAL.match(data, pos)
                    assert m is not None
                    out.append(int(m.group(), 8) & 0xFF)
                    pos = m.end()
                elif e in b"\r\n":  # line continuation
                    pos += 2 if data.startswith(b"\r\n", pos) else 1
                else:
                    out.append(e)
                    pos += 1
                continue
            if c == ord("("):
                depth += 1
            elif c == ord(")"):
                depth -= 1
                if depth == 0:
                    self.pos = pos + 1
                    return bytes(out)
            out.append(c)
            pos += 1
        raise self.fail("string tidak ditutup")

    def indirect_object(self) -> _Object:
        self.skip_ws()
        start = self.pos
        ref = Ref(self.integer(), self.integer())
        self.keyword(b"obj")
        value = self.value()
        if isinstance(value, dict) and self.peek_keyword(b"stream"):
            self.pos += len(b"stream")
            if self.data.startswith(b"\r\n", self.pos):
                self.pos += 2
            elif self.data.startswith(b"\n", self.pos):
                self.pos += 1
            else:
                raise self.fail(f"akhir baris setelah 'stream' di objek {ref}")
            length = value.get("/Length")
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise self.fail(f"panjang stream objek {ref} harus bilangan langsung")
            data = self.data[self.pos : self.pos + length]
            if len(data) != length:
                raise self.fail(f"stream objek {ref} terpotong")
            self.pos += length
            self.keyword(b"endstream")
            value = Stream(value, data)
        self.keyword(b"endobj")
        return _Object(ref, value, start, self.pos)

    def revision(self) -> _Revision:
        objects: dict[Ref, _Object] = {}
        while not self.peek_keyword(b"xref"):
            if self.at_end():
                raise self.fail("tabel referensi silang (xref) tidak ada")
            obj = self.indirect_object()
            if obj.ref in objects:
                raise self.fail(f"objek {obj.ref} ditulis dua kali dalam satu revisi")
            objects[obj.ref] = obj
        xref_offset = self.pos
        self.pos += len(b"xref")
        entries = self._xref_entries()
        self.keyword(b"trailer")
        trailer = self.value()
        if not isinstance(trailer, dict):
            raise self.fail("trailer bukan kamus")
        self.keyword(b"startxref")
        startxref = self.integer()
        self.skip_ws()
        if not self.data.startswith(b"%%EOF", self.pos):
            raise self.fail("penanda %%EOF tidak ada")
        self.pos += 5
        for eol in (b"\r\n", b"\n", b"\r"):
            if self.data.startswith(eol, self.pos):
                self.pos += len(eol)
                break
        if startxref != xref_offset:
            raise UpdateRefused("Penunjuk startxref tidak menunjuk tabel xref revisinya")
        by_offset = {o.start: o for o in objects.values()}
        listed: set[Ref] = set()
        for idnum, (offset, generation, kind) in entries.items():
            if kind == "f":
                if (idnum, offset, generation) != (0, 0, 65535):
                    raise UpdateRefused(f"Objek {idnum} dibebaskan setelah surat diterbitkan")
                continue
            obj = by_offset.get(offset)
            if obj is None or obj.ref != (idnum, generation):
                raise UpdateRefused(f"Entri xref objek {idnum} tidak menunjuk objeknya")
            listed.add(obj.ref)
        unlisted = set(objects) - listed
        if unlisted:
            ref = min(unlisted)
            raise UpdateRefused(f"Objek {ref} ada di berkas tetapi tidak tercatat di tabel xref")
        return _Revision(objects, xref_offset, trailer, self.pos)

    def _xref_entries(self) -> dict[int, tuple[int, int, str]]:
        entries: dict[int, tuple[int, int, str]] = {}
        while not self.peek_keyword(b"trailer"):
            first, count = self.integer(), self.integer()
            self.skip_ws()
            for idnum in range(first, first + count):
                m = _XREF_ENTRY.match(self.data, self.pos)
                if m is None:
                    raise self.fail(f"entri xref rusak di posisi {self.pos}")
                if idnum in entries:
                    raise self.fail(f"objek {idnum} tercatat dua kali di tabel xref")
                entries[idnum] = (int(m.group(1)), int(m.group(2)), m.group(3).decode())
                self.pos = m.end()
        return entries


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
