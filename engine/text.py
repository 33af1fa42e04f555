"""The one rule for free text that anyone types into Surat Desa: request fields, names, reasons,
search strings. Every face (JSON API, staff app, CLI) calls these cleaners, so the rule lives in
one place.

Refused, with an Indonesian reason naming the character:
- control characters (C0 incl. NUL, DEL, C1), except a line break where the field allows several
  lines (and a tab nowhere: it prints as nothing);
- lone surrogates (U+D800-U+DFFF: JSON can carry them, UTF-8 cannot, PostgreSQL refuses them);
- noncharacters (U+FFFE, U+FFFF and friends), which have no meaning in text.

A separate question is whether the letter's embedded fonts can print a character at all: see
:func:`unprintable_problem` and ``engine.letters.pdf_fonts.unprintable``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

from engine.errors import InvalidInput, SuratDesaError

# Large enough for any reason or note a village office writes, small enough for any column.
DEFAULT_MAX_LENGTH = 2000


class TextProblem(SuratDesaError, ValueError):
    """`str(problem)` is the Indonesian reason, fit to show beside the field."""


def _describe(ch: str) -> str:
    code = f"U+{ord(ch):04X}"
    name = unicodedata.name(ch, "")
    return f"{code} {name}".strip() if name else code


def forbidden_char(text: str, *, multiline: bool = False) -> str | None:
    """The first character the rule refuses, or None."""
    for ch in text:
        cp = ord(ch)
        if cp < 0x20 or 0x7F <= cp <= 0x9F:
            if multiline and ch in "\n\r":
                continue
            return ch
        if 0xD800 <= cp <= 0xDFFF:
            return ch
        if (cp & 0xFFFE) == 0xFFFE or 0xFDD0 <= cp <= 0xFDEF:
            return ch
    return None


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """The reason `text` is refused, or None when it is acceptable."""
    ch = forbidden_char(text, multiline=multiline)
    if ch is None:
        return None
    cp = ord(ch)
    if cp == 0:
        return "Tidak boleh berisi karakter NUL"
    if 0xD800 <= cp <= 0xDFFF:
        return f"Berisi karakter tidak sah ({_describe(ch)}, surrogate tanpa pasangan)"
    if ch in "\n\r":
        return "Harus satu baris"
    if ch == "\t":
        return "Tidak boleh berisi karakter tab"
    if cp < 0x20 or 0x7F <= cp <= 0x9F:
        return f"Tidak boleh berisi karakter kendali ({_describe(ch)})"
    return f"Berisi karakter tidak sah ({_describe(ch)})"


def clean_text(
    value: object,
    *,
    multiline: bool = False,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    strip: bool = True,
) -> str:
    """`value` as acceptable text: stripped, CRLF -> LF where several lines are allowed.
    Raises :class:`TextProblem` with the reason."""
    if not isinstance(value, str):
        raise TextProblem("Harus berupa teks")
    text = value.strip() if strip else value
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    problem = text_problem(text, multiline=multiline)
    if problem:
        raise TextProblem(problem)
    if max_length is not None and len(text) > max_length:
        raise TextProblem(f"Terlalu panjang: maksimal {max_length} karakter")
    return text


def unprintable_problem(text: str) -> str | None:
    """Why the letter's fonts cannot print `text` (names the characters), or None.

    Decision (issue 8): characters outside the embedded fonts' actual coverage (CJK, emoji,
    Arabic, ...) are refused at input rather than printed with extra fonts. A village letter is
    written in Indonesian with Latin script; the registry's names are Latin; a CJK or emoji font
    would add megabytes to every signed PDF and to the archive. Refusing is honest: before, such
    characters silently vanished from a signed, certified letter."""
    from engine.letters.pdf_fonts import (
        unprintable,  # the fonts' coverage is the renderer's knowledge
    )

    missing = unprintable(text)
    if not missing:
        return None
    shown = ", ".join(f"'{c}' ({_describe(c)})" for c in missing[:3])
    more = f" dan {len(missing) - 3} lainnya" if len(missing) > 3 else ""
    return f"Karakter berikut tidak dapat dicetak pada surat: {shown}{more}"


def clean_printable(
    value: object, *, multiline: bool = False, max_length: int | None = None
) -> str:
    """:func:`clean_text`, then refuse what the letter's fonts cannot print."""
    text = clean_text(value, multiline=multiline, max_length=max_length)
    problem = unprintable_problem(text)
    if problem:
        raise TextProblem(problem)
    return text


def check_fields(
    fields: Mapping[str, object],
    *,
    multiline: Iterable[str] = (),
    max_length: int | None = DEFAULT_MAX_LENGTH,
    message: str = "Isian belum benar.",
) -> dict[str, str]:
    """Clean several named text fields at once (None and "" pass as ""); raises
    :class:`InvalidInput` naming every bad field."""
    multi = set(multiline)
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            cleaned[name] = ""
            continue
        try:
            cleaned[name] = clean_text(value, multiline=name in multi, max_length=max_length)
        except TextProblem as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidInput(message, errors)
    return cleaned


def safe_key(name: object) -> str:
    """A caller's key (e.g. an unknown field name) made safe to echo in an error answer."""
    text = str(name)
    if forbidden_char(text) is None:
        return text[:100]
    return "".join(c if forbidden_char(c) is None else "\ufffd" for c in text)[:100]
