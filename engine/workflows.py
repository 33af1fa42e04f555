"""Letter types as data: one YAML file per workflow, loaded into an immutable, versioned spec.

File format (see ``workflows/*.yaml`` and :func:`workflow_json_schema`)::

    id: surat-keterangan-kematian        # lowercase slug, unique across files
    version: 1                           # integer; bump on every change
    title: Surat Keterangan Kematian
    classification: "474.3"              # quoted: 470.10 unquoted would be the float 470.1
    number_format: "{classification}/{seq:03}/{village_code}/{month_roman}/{year}"
    subjects:                            # people the letter is about, looked up by NIK
      deceased: {label: Yang meninggal, alive: true}
      reporter: {label: Pelapor, required: false}
    fields:
      - {name: date_of_death, label: Tanggal meninggal, type: date, required: true,
         not_future: true}
    template: templates/kematian.html.j2 # relative to this file, must stay inside its folder
    initial: draft                       # optional; default: the first step
    steps:
      draft:   {role: operator, label: Isian petugas, actions: {submit: review}}
      review:  {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}
      signing: {role: head, actions: {sign: issued, return: review, reject: rejected},
                signers: {sekdes: a.n.}}   # optional: who else signs, on the head's behalf
    effects:
      issued: [{mark_deceased: deceased}]
    public_facts:                        # what the public page and the QR seal show
      - {label: Nama, from: subject:deceased.name}
      - {label: Tanggal meninggal, from: field:date_of_death}

``public_facts`` (1 to 3) name where each fact comes from: ``field:<name>`` or
``subject:<role>.<attr>`` with attr one of name, nik, birth_date, birth_place, sex. Values are
formatted as the letter prints them (dates "28 November 2026"); a NIK is always masked. Without
``public_facts`` the page and seal show the first subject's name.

Rules beyond the shape: ``sign`` leads to ``issued`` and nothing else does; ``reject`` leads to
``rejected``; every other action leads to a step. ``cancelled`` is reached only through the
built-in cancel (an operator, before issue), never declared. Every step is reachable from the
initial step, every step can reach an end, and some path reaches ``issued``. ``signers`` is only
allowed on a head's step with a ``sign`` action: it names the staff roles that may sign that step
on the head's behalf, ``a.n.`` (sekdes) or ``u.b.`` (kasi), printed before the head's title.

Problems are reported as ``file:line: reason`` with the reason in Bahasa Indonesia, since the
regency admin who edits workflows reads them.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import jinja2
import jinja2.meta
import yaml

from engine.dates import roman_month, today_wib
from engine.nik import NikError, parse_nik
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
    "not_future": ("date",),
}

_REQUIRED_KEYS = ("id", "version", "title", "classification", "number_format", "subjects")
_REQUIRED_KEYS += ("template", "steps")
_OPTIONAL_KEYS = ("description", "fields", "initial", "effects", "public_facts")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INT_PLACEHOLDERS = frozenset({"seq", "month", "year"})
_PAD = re.compile(r"0[1-9]")


# --------------------------------------------------------------------------- errors


class WorkflowError(Exception):
    """One problem in a workflow file. ``str(e)`` is ``file:line: reason``
    (``file: reason`` when no line applies)."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = reason
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {reason}")


class WorkflowErrors(Exception):
    """Every problem found while loading a directory of workflows."""

    def __init__(self, errors: list[WorkflowError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class FieldErrors(ValueError):
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


# --------------------------------------------------------------------------- YAML with lines


class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the lines (1-based) of itself, its keys and values."""

    line: int
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]

    def kline(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)

    def vline(self, key: Any) -> int:
        return self.value_lines.get(key, self.line)


class _Seq(list):  # type: ignore[type-arg]
    line: int
    item_lines: list[int]


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: object) -> None:
        self.line = line
        self.key = key


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    m = _Map()
    m.line = node.start_mark.line + 1
    m.key_lines, m.value_lines = {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            duplicate = key in m
        except TypeError:  # unhashable key, e.g. a list
            raise _DuplicateKey(line, None) from None
        if duplicate:
            raise _DuplicateKey(line, key)
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = line
        m.value_lines[key] = value_node.start_mark.line + 1
    return m


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    s = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    s.line = node.start_mark.line + 1
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    return s


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# --------------------------------------------------------------------------- checking


class _Problems:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.items: list[WorkflowError] = []

    def add(self, line: int | None, reason: str) -> None:
        self.items.append(WorkflowError(self.file, line, reason))


def _is_text(v: object) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _check_keys(
    p: _Problems, m: _Map, where: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    for key in m:
        if key not in required and key not in optional:
            allowed = ", ".join(required + optional)
            p.add(m.kline(key), f"{where}: kunci '{key}' tidak dikenal (yang boleh: {allowed})")
    for key in required:
        if key not in m:
            p.add(m.line, f"{where}: kunci '{key}' wajib ada")


def _bool(p: _Problems, m: _Map, key: str, where: str, default: bool) -> bool:
    v = m.get(key, default)
    if not isinstance(v, bool):
        p.add(m.vline(key), f"{where}: '{key}' harus true atau false")
        return default
    return v


def _subjects(p: _Problems, raw: object, line: int) -> tuple[SubjectSpec, ...]:
    if not isinstance(raw, _Map) or not raw:
        p.add(line, "subjects: harus berupa daftar nama -> {label: ...} dan tidak kosong")
        return ()
    out = []
    for name, spec in raw.items():
        where = f"subjek '{name}'"
        if not isinstance(name, str) or not _NAME.match(name):
            p.add(raw.kline(name), f"{where}: nama harus huruf kecil, angka dan _ (misal: pelapor)")
            continue
        if not isinstance(spec, _Map):
            p.add(raw.vline(name), f"{where}: harus berupa {{label: ...}}")
            continue
        _check_keys(p, spec, where, ("label",), ("required", "alive", "sex"))
        alive = spec.get("alive")
        if alive is not None and not isinstance(alive, bool):
            p.add(spec.vline("alive"), f"{where}: 'alive' harus true, false atau tidak diisi")
            alive = None
        sex = spec.get("sex")
        if sex not in (None, "L", "P"):
            p.add(spec.vline("sex"), f"{where}: 'sex' harus L atau P")
            sex = None
        label = spec.get("label")
        if "label" in spec and not _is_text(label):
            p.add(spec.vline("label"), f"{where}: 'label' harus teks")
        out.append(
            SubjectSpec(
                name=name,
                label=str(label or name),
                required=_bool(p, spec, "required", where, True),
                alive=alive,
                sex=sex,
            )
        )
    return tuple(out)


def _limit(p: _Problems, spec: _Map, key: str, where: str) -> int | Decimal | None:
    v = spec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        p.add(spec.vline(key), f"{where}: '{key}' harus berupa angka")
        return None
    return v if isinstance(v, int) else Decimal(str(v))


def _fields(p: _Problems, raw: object, line: int, subject_names: set[str]) -> tuple[FieldSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, _Seq):
        p.add(line, "fields: harus berupa daftar (- {name: ..., label: ..., type: ...})")
        return ()
    out: list[FieldSpec] = []
    seen: set[str] = set()
    for spec, item_line in zip(raw, raw.item_lines, strict=True):
        if not isinstance(spec, _Map):
            p.add(item_line, "fields: tiap isian harus berupa {name: ..., label: ..., type: ...}")
            continue
        name = spec.get("name")
        where = f"isian '{name}'"
        _check_keys(
            p,
            spec,
            where,
            ("name", "label", "type"),
            ("required", "options", "max_length", "min", "max", "not_future"),
        )
        if not isinstance(name, str) or not _NAME.match(name):
            p.add(spec.vline("name"), f"{where}: nama harus huruf kecil, angka dan _")
            continue
        if name in seen:
            p.add(spec.vline("name"), f"{where}: nama isian ganda")
            continue
        if name in subject_names:
            p.add(spec.vline("name"), f"{where}: nama sudah dipakai subjek")
            continue
        seen.add(name)
        if "label" in spec and not _is_text(spec["label"]):
            p.add(spec.vline("label"), f"{where}: 'label' harus teks")
        ftype = spec.get("type")
        if ftype not in FIELD_TYPES:
            if "type" in spec:
                p.add(
                    spec.vline("type"),
                    f"{where}: jenis '{ftype}' tidak dikenal (yang ada: {', '.join(FIELD_TYPES)})",
                )
            continue

        for key, types in _TYPE_ONLY_KEYS.items():
            if key in spec and ftype not in types:
                p.add(spec.kline(key), f"{where}: '{key}' hanya untuk jenis {', '.join(types)}")

        options: tuple[str, ...] = ()
        if ftype == "choice":
            raw_opts = spec.get("options")
            if not isinstance(raw_opts, _Seq) or not raw_opts:
                p.add(
                    spec.kline("options") if "options" in spec else spec.line,
                    f"{where}: jenis choice wajib punya 'options' (daftar pilihan)",
                )
            elif not all(_is_text(o) for o in raw_opts):
                p.add(spec.vline("options"), f"{where}: tiap pilihan harus teks")
            elif len({o.strip().casefold() for o in raw_opts}) != len(raw_opts):
                p.add(spec.vline("options"), f"{where}: ada pilihan ganda")
            else:
                options = tuple(o.strip() for o in raw_opts)

        max_length = spec.get("max_length", DEFAULT_MAX_LENGTH.get(ftype))
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            p.add(spec.vline("max_length"), f"{where}: 'max_length' harus bilangan bulat positif")
            max_length = DEFAULT_MAX_LENGTH.get(ftype)
        lo, hi = _limit(p, spec, "min", where), _limit(p, spec, "max", where)
        if lo is not None and hi is not None and lo > hi:
            p.add(spec.vline("min"), f"{where}: 'min' lebih besar dari 'max'")
        out.append(
            FieldSpec(
                name=name,
                label=str(spec.get("label") or name),
                type=ftype,
                required=_bool(p, spec, "required", where, False),
                options=options,
                max_length=max_length if ftype in DEFAULT_MAX_LENGTH else None,
                min=lo,
                max=hi,
                not_future=_bool(p, spec, "not_future", where, False),
            )
        )
    return tuple(out)


def _steps(p: _Problems, raw: object, line: int) -> dict[str, StepSpec]:
    if not isinstance(raw, _Map) or not raw:
        p.add(line, "steps: harus berupa daftar nama langkah -> {role: ..., actions: {...}}")
        return {}
    steps: dict[str, StepSpec] = {}
    for name, spec in raw.items():
        where = f"langkah '{name}'"
        if not isinstance(name, str) or not _NAME.match(name):
            p.add(raw.kline(name), f"{where}: nama harus huruf kecil, angka dan _ (misal: review)")
            continue
        if name in TERMINAL_STATES:
            p.add(raw.kline(name), f"{where}: nama ini dipakai untuk status akhir")
            continue
        if not isinstance(spec, _Map):
            p.add(raw.vline(name), f"{where}: harus berupa {{role: ..., actions: {{...}}}}")
            continue
        _check_keys(p, spec, where, ("role", "actions"), ("label", "signers"))
        role = spec.get("role")
        if "role" in spec and role not in ROLES:
            p.add(
                spec.vline("role"),
                f"{where}: peran '{role}' tidak dikenal (yang ada: {', '.join(sorted(ROLES))})",
            )
        label = spec.get("label")
        if label is not None and not _is_text(label):
            p.add(spec.vline("label"), f"{where}: 'label' harus teks")
        actions_raw = spec.get("actions")
        actions: dict[str, str] = {}
        if "actions" in spec and (not isinstance(actions_raw, _Map) or not actions_raw):
            p.add(spec.vline("actions"), f"{where}: 'actions' harus berupa {{aksi: tujuan}}")
        elif isinstance(actions_raw, _Map):
            for action, target in actions_raw.items():
                if action not in ACTIONS:
                    extra = " (pembatalan sudah bawaan)" if action == "cancel" else ""
                    p.add(
                        actions_raw.kline(action),
                        f"{where}: aksi '{action}' tidak dikenal "
                        f"(yang ada: {', '.join(sorted(ACTIONS))}){extra}",
                    )
                    continue
                if not isinstance(target, str):
                    p.add(actions_raw.vline(action), f"{where}: tujuan aksi '{action}' harus nama")
                    continue
                actions[action] = target
        signers = _signers(p, spec, where, role, actions) if "signers" in spec else {}
        steps[name] = StepSpec(
            name=name,
            role=str(role),
            actions=MappingProxyType(actions),
            label=label if isinstance(label, str) else None,
            signers=MappingProxyType(signers),
        )
    return steps


def _signers(
    p: _Problems, spec: _Map, where: str, role: object, actions: dict[str, str]
) -> dict[str, str]:
    raw = spec["signers"]
    line = spec.vline("signers")
    if not isinstance(raw, _Map) or not raw:
        p.add(line, f"{where}: 'signers' harus berupa {{peran: a.n.}} (misal: {{sekdes: a.n.}})")
        return {}
    if role != "head":
        p.add(spec.kline("signers"), f"{where}: 'signers' hanya untuk langkah peran head")
        return {}
    if "sign" not in actions:
        p.add(spec.kline("signers"), f"{where}: 'signers' hanya untuk langkah dengan aksi sign")
        return {}
    out: dict[str, str] = {}
    for signer, mark in raw.items():
        if signer not in DELEGATE_ROLES:
            p.add(
                raw.kline(signer),
                f"{where}: penanda tangan '{signer}' tidak dikenal "
                f"(yang boleh: {', '.join(DELEGATE_ROLES)})",
            )
        elif mark not in DELEGATE_MARKS:
            p.add(
                raw.vline(signer),
                f"{where}: penanda tangan '{signer}' harus {' atau '.join(DELEGATE_MARKS)}, "
                f"bukan {mark!r}",
            )
        else:
            out[signer] = mark
    return out


def _check_graph(
    p: _Problems, raw_steps: _Map, steps_line: int, steps: dict[str, StepSpec], initial: str
) -> None:
    def action_line(step: str, action: str) -> int:
        spec = raw_steps.get(step)
        actions = spec.get("actions") if isinstance(spec, _Map) else None
        if isinstance(actions, _Map):
            return actions.vline(action)
        return raw_steps.kline(step)

    edges: dict[str, set[str]] = {}
    for name, step in steps.items():
        edges[name] = set()
        for action, target in step.actions.items():
            where = f"langkah '{name}', aksi '{action}'"
            line = action_line(name, action)
            if target == "cancelled":
                p.add(line, f"{where}: 'cancelled' hanya lewat pembatalan bawaan, bukan aksi")
            elif target not in steps and target not in TERMINAL_STATES:
                p.add(line, f"{where}: tujuan '{target}' bukan langkah maupun status akhir")
            elif action == "sign" and target != "issued":
                p.add(line, f"{where}: aksi sign harus menuju 'issued'")
            elif action != "sign" and target == "issued":
                p.add(line, f"{where}: hanya aksi sign yang boleh menuju 'issued'")
            elif action == "reject" and target != "rejected":
                p.add(line, f"{where}: aksi reject harus menuju 'rejected'")
            elif action != "reject" and target == "rejected":
                p.add(line, f"{where}: hanya aksi reject yang boleh menuju 'rejected'")
            else:
                edges[name].add(target)

    reachable = _closure({initial}, lambda s: edges.get(s, set()))
    for name in steps:
        if name not in reachable:
            p.add(raw_steps.kline(name), f"langkah '{name}' tidak bisa dicapai dari '{initial}'")
    reverse: dict[str, set[str]] = {}
    for src, targets in edges.items():
        for t in targets:
            reverse.setdefault(t, set()).add(src)
    reaches_end = _closure(set(TERMINAL_STATES), lambda s: reverse.get(s, set()))
    for name in steps:
        if name in reachable and name not in reaches_end:
            p.add(raw_steps.kline(name), f"langkah '{name}' tidak pernah sampai ke status akhir")
    if "issued" not in reachable:
        p.add(steps_line, f"tidak ada jalan dari '{initial}' ke 'issued' (aksi sign)")


def _closure(start: set[str], next_states: Any) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for n in next_states(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _effects(
    p: _Problems,
    raw: object,
    line: int,
    states: set[str],
    subjects: dict[str, SubjectSpec],
) -> tuple[EffectSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, _Map):
        p.add(line, "effects: harus berupa status -> [{jenis: subjek}]")
        return ()
    out = []
    for state, items in raw.items():
        if state not in states:
            p.add(raw.kline(state), f"effects: status '{state}' tidak ada di alur ini")
            continue
        if not isinstance(items, _Seq):
            p.add(raw.vline(state), f"effects '{state}': harus berupa daftar [{{jenis: subjek}}]")
            continue
        for item, item_line in zip(items, items.item_lines, strict=True):
            if not isinstance(item, _Map) or len(item) != 1:
                p.add(item_line, f"effects '{state}': tiap efek harus {{jenis: subjek}}")
                continue
            ((kind, subject),) = item.items()
            if kind not in EFFECT_KINDS:
                p.add(
                    item_line,
                    f"effects '{state}': jenis '{kind}' tidak dikenal "
                    f"(yang ada: {', '.join(sorted(EFFECT_KINDS))})",
                )
            elif subject not in subjects:
                p.add(item_line, f"effects '{state}': subjek '{subject}' tidak ada di 'subjects'")
            elif kind == "mark_deceased" and subjects[subject].alive is not True:
                p.add(
                    item_line,
                    f"effects '{state}': mark_deceased butuh subjek dengan 'alive: true'",
                )
            else:
                out.append(EffectSpec(on_state=state, kind=kind, subject=subject))
    return tuple(out)


_FACT_FROM = re.compile(r"^(field):([a-z][a-z0-9_]*)$|^(subject):([a-z][a-z0-9_]*)\.([a-z_]+)$")


def _public_facts(
    p: _Problems,
    raw: object,
    line: int,
    subjects: dict[str, SubjectSpec],
    fields: tuple[FieldSpec, ...],
) -> tuple[PublicFactSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, _Seq) or not raw:
        p.add(line, "public_facts: harus berupa daftar (- {label: ..., from: field:<nama>})")
        return ()
    if len(raw) > PUBLIC_FACTS_MAX:
        p.add(line, f"public_facts: paling banyak {PUBLIC_FACTS_MAX} data (QR harus tetap kecil)")
    field_names = {f.name for f in fields}
    out: list[PublicFactSpec] = []
    labels: set[str] = set()
    for item, item_line in zip(raw, raw.item_lines, strict=True):
        if not isinstance(item, _Map):
            p.add(item_line, "public_facts: tiap data harus {label: ..., from: ...}")
            continue
        where = f"public_facts '{item.get('label')}'"
        _check_keys(p, item, where, ("label", "from"), ())
        label, source = item.get("label"), item.get("from")
        if "label" in item and (not _is_text(label) or len(label) > PUBLIC_FACT_LABEL_MAX):
            p.add(
                item.vline("label"),
                f"{where}: 'label' harus teks, paling panjang {PUBLIC_FACT_LABEL_MAX} huruf",
            )
            continue
        if isinstance(label, str) and label.strip().casefold() in labels:
            p.add(item.vline("label"), f"{where}: label ganda")
            continue
        if "from" not in item or "label" not in item:
            continue
        m = _FACT_FROM.match(source) if isinstance(source, str) else None
        if m is None:
            p.add(
                item.vline("from"),
                f"{where}: 'from' harus field:<nama isian> atau subject:<subjek>.<data> "
                f"(data: {', '.join(PUBLIC_FACT_SUBJECT_ATTRS)}), bukan {source!r}",
            )
            continue
        if m.group(1):
            if m.group(2) not in field_names:
                p.add(item.vline("from"), f"{where}: isian '{m.group(2)}' tidak ada di 'fields'")
                continue
            fact = PublicFactSpec(label.strip(), "field", m.group(2))
        else:
            role, attr = m.group(4), m.group(5)
            if role not in subjects:
                p.add(item.vline("from"), f"{where}: subjek '{role}' tidak ada di 'subjects'")
                continue
            if attr not in PUBLIC_FACT_SUBJECT_ATTRS:
                p.add(
                    item.vline("from"),
                    f"{where}: data subjek '{attr}' tidak dikenal "
                    f"(yang ada: {', '.join(PUBLIC_FACT_SUBJECT_ATTRS)})",
                )
                continue
            fact = PublicFactSpec(label.strip(), "subject", role, attr)
        labels.add(fact.label.casefold())
        out.append(fact)
    return tuple(out)


def _template(p: _Problems, path: Path, doc: _Map) -> tuple[str, Path, bytes]:
    template = doc.get("template")
    line = doc.vline("template")
    if not _is_text(template):
        p.add(line, "template: harus berupa nama berkas (misal: templates/umum.html.j2)")
        return "", path.parent, b""
    base = path.parent.resolve()
    resolved = (base / template).resolve()
    if Path(template).is_absolute() or not resolved.is_relative_to(base):
        p.add(line, f"template: '{template}' harus berada di dalam folder {base}")
        return template, resolved, b""
    try:
        return template, resolved, resolved.read_bytes()
    except OSError:
        p.add(line, f"template: berkas '{template}' tidak ditemukan ({resolved})")
        return template, resolved, b""


def workflow_problems(path: Path) -> tuple[WorkflowSpec | None, list[WorkflowError]]:
    """Load a workflow file and return (spec, []) or (None, every problem found)."""
    path = Path(path)
    p = _Problems(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as e:
        p.add(None, f"berkas tidak bisa dibaca: {e.strerror or e}")
        return None, p.items
    try:
        doc = yaml.load(raw_bytes.decode("utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader)
    except UnicodeDecodeError:
        p.add(None, "berkas harus berenkode UTF-8")
        return None, p.items
    except _DuplicateKey as e:
        what = f"kunci '{e.key}' ganda" if e.key is not None else "kunci tidak valid"
        p.add(e.line, what)
        return None, p.items
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        p.add(mark.line + 1 if mark else None, f"YAML tidak valid: {e.problem or e.context}")
        return None, p.items
    except yaml.YAMLError as e:
        p.add(None, f"YAML tidak valid: {e}")
        return None, p.items
    if not isinstance(doc, _Map):
        p.add(getattr(doc, "line", 1), "isi berkas harus berupa mapping (id: ..., version: ...)")
        return None, p.items

    _check_keys(p, doc, "berkas", _REQUIRED_KEYS, _OPTIONAL_KEYS)

    wf_id = doc.get("id")
    if "id" in doc and (not isinstance(wf_id, str) or not _SLUG.match(wf_id)):
        p.add(doc.vline("id"), "id: harus huruf kecil, angka dan tanda -")
    version = doc.get("version")
    if "version" in doc and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        p.add(doc.vline("version"), f"version: harus bilangan bulat >= 1, bukan {version!r}")
    for key in ("title", "classification", "number_format"):
        if key in doc and not _is_text(doc[key]):
            hint = ' (tulis dalam tanda kutip, misal "474.3")' if key == "classification" else ""
            p.add(doc.vline(key), f"{key}: harus berupa teks{hint}")
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        p.add(doc.vline("description"), "description: harus berupa teks")
    number_format = doc.get("number_format")
    if _is_text(number_format):
        problem = number_format_problem(number_format)
        if problem:
            p.add(doc.vline("number_format"), f"number_format: {problem}")

    subjects = _subjects(p, doc.get("subjects"), doc.vline("subjects")) if "subjects" in doc else ()
    subject_map = {s.name: s for s in subjects}
    fields = _fields(p, doc.get("fields"), doc.vline("fields"), set(subject_map))
    template, template_path, template_bytes = (
        _template(p, path, doc) if "template" in doc else ("", path.parent, b"")
    )

    steps: dict[str, StepSpec] = {}
    initial = ""
    if "steps" in doc:
        raw_steps = doc["steps"]
        steps = _steps(p, raw_steps, doc.vline("steps"))
        if steps:
            initial = doc.get("initial", next(iter(steps)))
            if initial not in steps:
                p.add(doc.vline("initial"), f"initial: '{initial}' bukan nama langkah")
            else:
                _check_graph(p, raw_steps, doc.kline("steps"), steps, initial)
    effects = _effects(
        p, doc.get("effects"), doc.vline("effects"), set(steps) | TERMINAL_STATES, subject_map
    )
    public_facts = _public_facts(
        p, doc.get("public_facts"), doc.kline("public_facts"), subject_map, fields
    )

    sources = template_bundle(template_path) if template_bytes else {}
    if p.items:
        return None, p.items
    return (
        WorkflowSpec(
            id=wf_id,
            version=version,
            title=doc["title"].strip(),
            classification=doc["classification"].strip(),
            number_format=number_format,
            subjects=subjects,
            fields=fields,
            template=template,
            template_path=template_path,
            steps=MappingProxyType(steps),
            initial_state=initial,
            effects=effects,
            sha256=_bundle_sha256(raw_bytes, sources),
            source_path=path.resolve(),
            description=description,
            template_sources=MappingProxyType(sources),
            public_facts=public_facts,
        ),
        [],
    )


def load_workflow(path: Path) -> WorkflowSpec:
    """Load and check one workflow file; raises the first :class:`WorkflowError` found
    (use :func:`workflow_problems` to get all of them)."""
    spec, problems = workflow_problems(path)
    if problems:
        raise problems[0]
    assert spec is not None
    return spec


def load_workflows(directory: Path) -> dict[str, WorkflowSpec]:
    """Every ``*.yaml`` in ``directory`` (not recursive), keyed by id.

    Raises :class:`WorkflowErrors` with every problem in every file, duplicate ids included.
    """
    directory = Path(directory)
    specs: dict[str, WorkflowSpec] = {}
    errors: list[WorkflowError] = []
    for path in sorted(directory.glob("*.yaml")):
        spec, problems = workflow_problems(path)
        errors.extend(problems)
        if spec is None:
            continue
        if spec.id in specs:
            errors.append(
                WorkflowError(
                    path,
                    _id_line(path),
                    f"id '{spec.id}' sudah dipakai di {specs[spec.id].source_path.name}",
                )
            )
            continue
        specs[spec.id] = spec
    if errors:
        raise WorkflowErrors(errors)
    return specs


def _id_line(path: Path) -> int | None:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("id:"):
            return i
    return None


# --------------------------------------------------------------------------- JSON Schema


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a workflow file, for editors. The loader checks more
    (graph reachability, template existence, number format placeholders)."""
    name = {"type": "string", "pattern": _NAME.pattern}
    text = {"type": "string", "minLength": 1}
    target = {"type": "string", "pattern": _NAME.pattern}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://suratdesa.local/schema/workflow.json",
        "title": "Surat Desa workflow",
        "type": "object",
        "additionalProperties": False,
        "required": list(_REQUIRED_KEYS),
        "properties": {
            "id": {"type": "string", "pattern": _SLUG.pattern},
            "version": {"type": "integer", "minimum": 1},
            "title": text,
            "description": {"type": "string"},
            "classification": text,
            "number_format": {"type": "string", "pattern": r"\{seq(:0\d)?\}"},
            "subjects": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": name,
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["label"],
                    "properties": {
                        "label": text,
                        "required": {"type": "boolean"},
                        "alive": {"type": ["boolean", "null"]},
                        "sex": {"enum": ["L", "P", None]},
                    },
                },
            },
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "label", "type"],
                    "properties": {
                        "name": name,
                        "label": text,
                        "type": {"enum": list(FIELD_TYPES)},
                        "required": {"type": "boolean"},
                        "options": {"type": "array", "minItems": 1, "items": text},
                        "max_length": {"type": "integer", "minimum": 1},
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                        "not_future": {"type": "boolean"},
                    },
                    "if": {"properties": {"type": {"const": "choice"}}},
                    "then": {"required": ["options"]},
                },
            },
            "template": text,
            "initial": name,
            "steps": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {**name, "not": {"enum": sorted(TERMINAL_STATES)}},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["role", "actions"],
                    "properties": {
                        "role": {"enum": sorted(ROLES)},
                        "label": text,
                        "signers": {
                            "type": "object",
                            "minProperties": 1,
                            "propertyNames": {"enum": list(DELEGATE_ROLES)},
                            "additionalProperties": {"enum": list(DELEGATE_MARKS)},
                        },
                        "actions": {
                            "type": "object",
                            "minProperties": 1,
                            "propertyNames": {"enum": sorted(ACTIONS)},
                            "additionalProperties": target,
                            "properties": {
                                "sign": {"const": "issued"},
                                "reject": {"const": "rejected"},
                            },
                        },
                    },
                },
            },
            "public_facts": {
                "type": "array",
                "minItems": 1,
                "maxItems": PUBLIC_FACTS_MAX,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["label", "from"],
                    "properties": {
                        "label": {**text, "maxLength": PUBLIC_FACT_LABEL_MAX},
                        "from": {"type": "string", "pattern": _FACT_FROM.pattern},
                    },
                },
            },
            "effects": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "propertyNames": {"enum": sorted(EFFECT_KINDS)},
                        "additionalProperties": name,
                    },
                },
            },
        },
    }


__all__ = [
    "ACTIONS",
    "DELEGATE_MARKS",
    "DELEGATE_ROLES",
    "EFFECT_KINDS",
    "FIELD_TYPES",
    "ROLES",
    "TERMINAL_STATES",
    "EffectSpec",
    "FieldErrors",
    "FieldSpec",
    "PublicFactSpec",
    "StepSpec",
    "SubjectSpec",
    "WorkflowError",
    "WorkflowErrors",
    "WorkflowSpec",
    "format_number",
    "load_workflow",
    "load_workflows",
    "number_format_problem",
    "workflow_json_schema",
    "workflow_problems",
]


def template_bundle(template_path: Path) -> dict[str, str]:
    """The template and every template it extends, includes or imports (recursively), by name
    relative to the template's folder."""
    folder = template_path.parent
    env = jinja2.Environment()
    found: dict[str, str] = {}
    pending = [template_path.name]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = folder / name
        if not path.is_file():
            continue  # a missing partial is reported when the template is first rendered
        found[name] = path.read_text(encoding="utf-8")
        try:
            refs = jinja2.meta.find_referenced_templates(env.parse(found[name]))
        except jinja2.TemplateSyntaxError:
            continue
        pending.extend(ref for ref in refs if ref)
    return dict(sorted(found.items()))


def _bundle_sha256(yaml_bytes: bytes, sources: Mapping[str, str]) -> str:
    digest = hashlib.sha256(yaml_bytes)
    for name, text in sorted(sources.items()):
        digest.update(b"\0" + name.encode() + b"\0" + text.encode("utf-8"))
    return digest.hexdigest()
