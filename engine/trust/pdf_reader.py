"""Our own strict PDF reader for the revisions appended after an issued letter: cross-reference
sections, objects and streams read byte by byte, refusing anything ambiguous (UpdateRefused).
It reads only what the allow-list (engine.trust.pdf_updates) may accept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from engine.errors import SuratDesaError


class UpdateRefused(SuratDesaError):
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
