"""The spec a workflow YAML is loaded into (immutable), its errors, the cleaning of field values
and the letter number format."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from engine.dates import roman_month, today_wib
from engine.errors import SuratDesaError
from engine.people.nik import NikError, parse_nik
from engine.text import TextProblem, clean_printable, safe_key

ROLES = frozenset({"operator", "kasi", "sekdes", "head"})
ACTIONS = frozenset({"submit", "approve", "return", "reject", "sign"})
TERMINAL_STATES = frozenset({"issued", "rejected", "cancelled"})
FIELD_TYPES = ("text", "textarea", "date", "time", "number", "choice", "nik")
EFFECT_KINDS = frozenset({"mark_deceased"})
# Public facts: where each comes from, and the subject attributes that may be shown.
PUBLIC_FACT_SUBJECT_ATTRS = ("name", "nik", "birth_date", "birth_place", "sex")
PUBLIC_FACTS_MAX = 3  # the QR seal carries them: few and short
PUBLIC_FACT_LABEL_MAX = 24
# Who may sign a head's step on the head's behalf, and the mark printed before the head's title.
DELEGATE_ROLES = ("sekdes", "kasi")
DELEGATE_MARKS = ("a.n.", "u.b.")
NUMBER_PLACEHOLDERS = frozenset(
    {"classification", "seq", "village_code", "month_roman", "month", "year"}
)
DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 2000}
_TYPE_ONLY_KEYS = {
    "options": ("choice",),
    "max_length": ("text", "textarea"),
    "min": ("number",),
    "max": ("number",),
    "whole": ("number",),
    "not_future": ("date",),
}

_REQUIRED_KEYS = ("id", "version", "title", "classification", "number_format", "subjects")
_REQUIRED_KEYS += ("template", "steps")
_OPTIONAL_KEYS = ("description", "fields", "initial", "effects", "public_facts")
_OPTIONAL_KEYS += ("citizen_requestable",)
_OPTIONAL_KEYS += ("sample",)  # example field values for the editor's DRAFT preview
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INT_PLACEHOLDERS = frozenset({"seq", "month", "year"})
_PAD = re.compile(r"0[1-9]")


# --------------------------------------------------------------------------- errors


class WorkflowError(SuratDesaError):
    """One problem in a workflow file. ``str(e)`` is ``file:line: reason``
    (``file: reason`` when no line applies)."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = reason
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {reason}")


class WorkflowErrors(SuratDesaError):
    """Every problem found while loading a directory of workflows."""

    def __init__(self, errors: list[WorkflowError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class FieldErrors(SuratDesaError, ValueError):
    """Field values a user entered that do not fit the workflow.
    ``errors`` maps field name -> Indonesian reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class SubjectSpec:
    name: str
    label: str
    required: bool = True
    alive: bool | None = None  # True: must be alive in the registry; None: not checked
    sex: Literal["L", "P"] | None = None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    type: str
    required: bool = False
    options: tuple[str, ...] = ()  # choice only
    max_length: int | None = None  # text/textarea; defaults from DEFAULT_MAX_LENGTH
    min: int | Decimal | None = None  # number only
    max: int | Decimal | None = None  # number only
    whole: bool = False  # number only: no fractions (a count, an order)
    not_future: bool = False  # date only: no later than today (WIB)

    def clean(self, value: object, *, today: date | None = None) -> object:
        """The typed value, or None when empty. Raises ``ValueError`` with the
        Indonesian reason. Does not apply ``required``."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _CLEANERS[self.type](self, value, today)


@dataclass(frozen=True)
class StepSpec:
    name: str
    role: str
    actions: Mapping[str, str]  # action -> target state (read-only)
    label: str | None = None
    # role -> "a.n." / "u.b.": who else may sign this (head's) step, on the head's behalf
    signers: Mapping[str, str] = dataclass_field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class EffectSpec:
    on_state: str
    kind: str
    subject: str


@dataclass(frozen=True)
class PublicFactSpec:
    """One fact the public page and the QR seal show: ``field:<name>`` (source "field",
    attr None) or ``subject:<role>.<attr>`` (source "subject")."""

    label: str
    source: Literal["field", "subject"]
    name: str
    attr: str | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    id: str
    version: int
    title: str
    classification: str
    number_format: str
    subjects: tuple[SubjectSpec, ...]
    fields: tuple[FieldSpec, ...]
    template: str  # as written in the YAML
    template_path: Path  # resolved
    steps: Mapping[str, StepSpec]  # in file order (read-only)
    initial_state: str
    effects: tuple[EffectSpec, ...]
    sha256: str  # hex, of the YAML bytes followed by every template file it renders with
    source_path: Path
    description: str | None = None
    # The template and the partials it extends/imports, by name relative to its folder:
    # what a pinned request must keep to render exactly as it was approved.
    template_sources: Mapping[str, str] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )
    public_facts: tuple[PublicFactSpec, ...] = ()  # () : the first subject's name
    # Residents may ask for this letter online (engine.citizens); such a request enters the
    # initial step, which the operator works: they complete or correct it, then the chain runs.
    citizen_requestable: bool = False
    # Example field values (YAML ``sample:``) for the letter type editor's DRAFT preview;
    # fields without one get a made-up value (engine.requests.letter_type_editor).
    sample: Mapping[str, object] = dataclass_field(default_factory=lambda: MappingProxyType({}))

    def step(self, state: str) -> StepSpec:
        try:
            return self.steps[state]
        except KeyError:
            raise KeyError(f"{self.id} v{self.version}: no step {state!r}") from None

    def subject(self, name: str) -> SubjectSpec:
        for s in self.subjects:
            if s.name == name:
                return s
        raise KeyError(f"{self.id} v{self.version}: no subject {name!r}")

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.id} v{self.version}: no field {name!r}")

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.steps) | TERMINAL_STATES

    def effects_on(self, state: str) -> tuple[EffectSpec, ...]:
        return tuple(e for e in self.effects if e.on_state == state)

    def validate_data(
        self, data: Mapping[str, object], *, today: date | None = None
    ) -> dict[str, object]:
        """Cleaned, typed values for every declared field (None for empty optional ones).

        Raises :class:`FieldErrors` listing every bad, missing or unknown field.
        """
        errors: dict[str, str] = {}
        cleaned: dict[str, object] = {}
        known = {f.name for f in self.fields}
        for name in data:
            if name not in known:
                errors[safe_key(name)] = "Isian tidak dikenal untuk surat ini"
        for f in self.fields:
            try:
                value = f.clean(data.get(f.name), today=today)
            except ValueError as e:
                errors[f.name] = str(e)
                continue
            if value is None and f.required:
                errors[f.name] = "Wajib diisi"
                continue
            cleaned[f.name] = value
        if errors:
            raise FieldErrors(errors)
        return cleaned


# --------------------------------------------------------------------------- field values


def _clean_text(f: FieldSpec, value: object, _today: date | None) -> str:
    # The one text rule (engine.text): no control characters, NUL or lone surrogates, and only
    # characters the letter's embedded fonts print (a field's text goes onto the letter).
    try:
        return clean_printable(value, multiline=f.type == "textarea", max_length=f.max_length)
    except TextProblem as e:
        raise ValueError(str(e)) from None


def _clean_date(f: FieldSpec, value: object, today: date | None) -> date:
    # datetime is a date subclass, but its time part would be silently dropped
    if isinstance(value, date) and not hasattr(value, "hour"):
        d = value
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            d = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("Tanggal tidak valid, gunakan format YYYY-MM-DD") from None
    else:
        raise ValueError("Tanggal tidak valid, gunakan format YYYY-MM-DD")
    if f.not_future and d > (today or today_wib()):
        raise ValueError("Tanggal tidak boleh di masa depan")
    return d


def _clean_time(_f: FieldSpec, value: object, _today: date | None) -> time:
    if isinstance(value, time):
        return value
    # "14.30" is how Indonesians write times ("pukul 14.30"); forms send "14:30"
    m = isinstance(value, str) and re.fullmatch(
        r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?", value.strip()
    )
    if m:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        if h < 24 and mi < 60 and s < 60:
            return time(h, mi, s)
    raise ValueError("Jam tidak valid, gunakan format JJ:MM (misalnya 14:30)")


def _clean_number(f: FieldSpec, value: object, _today: date | None) -> int | Decimal:
    n: int | Decimal
    if isinstance(value, bool):
        raise ValueError("Harus berupa angka")
    if isinstance(value, int):
        n = value
    elif isinstance(value, Decimal | float):
        n = Decimal(str(value))
        if not n.is_finite():
            raise ValueError("Harus berupa angka")
    elif isinstance(value, str):
        # Decimal comma or point; no thousands separators (is "1.000" one or a thousand?)
        s = value.strip().replace(",", ".")
        if re.fullmatch(r"-?\d+", s):
            n = int(s)
        elif re.fullmatch(r"-?\d+\.\d+", s):
            n = Decimal(s)
        else:
            raise ValueError("Harus berupa angka")
    else:
        raise ValueError("Harus berupa angka")
    if f.whole:
        if n != int(n):
            raise ValueError("Harus bilangan bulat (tanpa koma)")
        n = int(n)
    if f.min is not None and n < f.min:
        raise ValueError(f"Minimal {f.min}")
    if f.max is not None and n > f.max:
        raise ValueError(f"Maksimal {f.max}")
    return n


def _clean_choice(f: FieldSpec, value: object, _today: date | None) -> str:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for option in f.options:
            if option.casefold() == wanted:
                return option
    shown = safe_key(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"Pilihan tidak dikenal: {shown}; pilih salah satu: {', '.join(f.options)}")


def _clean_nik(_f: FieldSpec, value: object, _today: date | None) -> str:
    if not isinstance(value, str):
        raise ValueError("NIK harus berupa teks 16 digit")
    try:
        return parse_nik(value).nik
    except NikError as e:
        raise ValueError(e.message) from None


_CLEANERS = {
    "text": _clean_text,
    "textarea": _clean_text,
    "date": _clean_date,
    "time": _clean_time,
    "number": _clean_number,
    "choice": _clean_choice,
    "nik": _clean_nik,
}


# --------------------------------------------------------------------------- numbering


def format_number(
    number_format: str,
    *,
    classification: str,
    seq: int,
    village_code: str,
    month: int,
    year: int,
) -> str:
    """A letter number, e.g. ``474.3/012/33.11.01.2001/XI/2026``."""
    return number_format.format(
        classification=classification,
        seq=seq,
        village_code=village_code,
        month_roman=roman_month(month),
        month=month,
        year=year,
    )


def number_format_problem(number_format: str) -> str | None:
    """Why a number format is unusable (Indonesian), or None if it is fine."""
    try:
        parsed = list(string.Formatter().parse(number_format))
    except ValueError:
        return "kurung kurawal { } tidak seimbang"
    names: set[str] = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in NUMBER_PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in sorted(NUMBER_PLACEHOLDERS))
            return f"bagian {{{name}}} tidak dikenal (yang ada: {known})"
        if conversion or (spec and (name not in _INT_PLACEHOLDERS or not _PAD.fullmatch(spec))):
            written = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return (
                f"format {{{written}}} tidak didukung "
                "(hanya lebar angka seperti {seq:03} atau {month:02})"
            )
        names.add(name)
    if "seq" not in names:
        return "format nomor harus memuat {seq} (nomor urut)"
    if "year" not in names:
        return "format nomor harus memuat {year}: nomor urut mulai lagi tiap 1 Januari"
    return None
