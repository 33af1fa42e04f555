"""The resident registry: look-up by NIK and all-or-nothing CSV import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dates import today_wib
from engine.errors import InvalidInput, NotFound
from engine.people.nik import NikError, ParsedNik, check_nik_matches, mask_nik, parse_nik
from engine.people.users import Actor
from engine.requests.workflows import WorkflowSpec
from engine.storage.models import Resident, Village
from engine.text import TextProblem, clean_text, unprintable_problem

RELIGIONS = ("Islam", "Kristen", "Katolik", "Hindu", "Buddha", "Konghucu", "Kepercayaan")
MARITAL_STATUSES = ("Belum Kawin", "Kawin", "Cerai Hidup", "Cerai Mati")
CSV_COLUMNS = (
    "nik",
    "kk",
    "name",
    "birth_place",
    "birth_date",
    "sex",
    "religion",
    "marital_status",
    "occupation",
    "address",
    "rt",
    "rw",
)
SEX_LABELS = {"L": "Laki-laki", "P": "Perempuan"}
CITIZENSHIPS = ("WNI", "WNA")
# Status hubungan dalam keluarga (SHDK), as on the Kartu Keluarga.
FAMILY_RELATIONS = (
    "Kepala Keluarga",
    "Suami",
    "Istri",
    "Anak",
    "Menantu",
    "Cucu",
    "Orang Tua",
    "Mertua",
    "Famili Lain",
    "Pembantu",
    "Lainnya",
)
# Columns a registry export may carry (migration 0014); empty or absent: the default below.
OPTIONAL_COLUMNS = ("citizenship", "family_relation", "dusun")
DEFAULTS: dict[str, str | None] = {"citizenship": "WNI", "family_relation": None, "dusun": None}
CHOICES = {
    "religion": RELIGIONS,
    "marital_status": MARITAL_STATUSES,
    "citizenship": CITIZENSHIPS,
    "family_relation": FAMILY_RELATIONS,
}
# The registry's column sizes (engine.storage.models.Resident).
TEXT_LIMITS = {"name": 120, "birth_place": 80, "occupation": 80, "address": 200, "dusun": 60}


def find_resident(session: Session, nik_text: str) -> Resident:
    """The resident with this NIK; InvalidInput naming what is wrong with a malformed NIK."""
    try:
        parsed = parse_nik(nik_text)
    except NikError as exc:
        raise InvalidInput(str(exc), {"nik": str(exc)}) from exc
    resident = session.scalar(select(Resident).where(Resident.nik == parsed.nik))
    if resident is None:
        raise NotFound(f"NIK {parsed.nik} tidak terdaftar dalam data penduduk.")
    return resident


# One answer for a NIK that is not registered and for one registered in another village: the
# operator learns nothing about residents they do not serve.
NOT_YOURS = "NIK {nik} tidak terdaftar di desa/kelurahan Anda."


def not_yours(nik_text: str) -> str:
    """The one answer for a NIK the actor may not see: unknown or registered elsewhere."""
    return NOT_YOURS.format(nik=parse_nik(nik_text).nik)


ELSEWHERE = (
    "NIK ini terdaftar di desa/kelurahan lain: datanya tidak ditampilkan. Cocokkan dengan "
    "KTP/KK yang dibawa; surat akan memuat data dari data penduduk."
)


@dataclass(frozen=True)
class ResidentView:
    """What staff may read of a resident they serve."""

    nik: str
    name: str
    birth_place: str
    birth_date: date
    sex: str  # "Laki-laki" | "Perempuan"
    religion: str
    marital_status: str
    occupation: str
    address: str  # street, RT/RW
    village_code: str
    alive: bool


@dataclass(frozen=True)
class SubjectLookup:
    """What the NIK box of a request form shows: the resident (own village), or for a subject
    the workflow lets come from another village only that the NIK is registered there
    (``resident`` None, ``elsewhere`` True); ``problem`` is why they cannot be this subject."""

    nik: str
    resident: ResidentView | None
    elsewhere: bool = False
    problem: str | None = None


def may_see(actor: Actor, resident: Resident) -> bool:
    """The rule: staff read the residents of their own village; the regency admin, who
    administers the registry of every village, reads any. Nobody else reads anyone."""
    if actor.role == "admin":
        return True
    return actor.village_code is not None and resident.village_code == actor.village_code


def lookup_for(session: Session, actor: Actor, nik_text: str) -> ResidentView:
    """The resident with this NIK as ``actor`` may see them. A NIK that is not registered and
    one registered in a village the actor does not serve get the same NotFound; a malformed NIK
    gets InvalidInput naming what is wrong (that says nothing about anyone)."""
    nik = _parse(nik_text)
    resident = session.scalar(select(Resident).where(Resident.nik == nik))
    if resident is None or not may_see(actor, resident):
        raise NotFound(not_yours(nik))
    return _view(resident)


def lookup_subject_for(
    session: Session, actor: Actor, spec: WorkflowSpec, subject_name: str, nik_text: str
) -> SubjectLookup:
    """A NIK typed for one subject of a request (the staff app's live look-up). Who may be a
    subject is the workflow's rule (``letter_requests.check_subjects``: the first subject lives
    in the actor's village, others may live anywhere); this shows no more than that rule needs.
    A resident of the actor's village: their data and whether they fit. The first subject from
    elsewhere: the same NotFound as an unknown NIK. Another subject from elsewhere: only that
    the NIK is registered (submitting the request tells as much) and whether it fits, with
    nothing personal."""
    from engine.requests.letter_requests import check_subjects  # it imports this module

    spec.subject(subject_name)  # KeyError: no such subject
    nik = _parse(nik_text)
    resident = session.scalar(select(Resident).where(Resident.nik == nik))
    first = spec.subjects[0].name == subject_name
    visible = resident is not None and may_see(actor, resident)
    if resident is None or (first and not visible):
        raise NotFound(not_yours(nik))
    problem = None
    try:
        check_subjects(session, spec, actor.village_code or "", {subject_name: nik})
    except InvalidInput as exc:
        problem = exc.errors.get(subject_name)
    if not visible:
        return SubjectLookup(nik, None, elsewhere=True, problem=problem)
    return SubjectLookup(nik, _view(resident), problem=problem)


def _parse(nik_text: str) -> str:
    try:
        return parse_nik(nik_text).nik
    except NikError as exc:
        raise InvalidInput(str(exc), {"nik": str(exc)}) from exc


def _view(resident: Resident) -> ResidentView:
    return ResidentView(
        nik=resident.nik,
        name=resident.name,
        birth_place=resident.birth_place,
        birth_date=resident.birth_date,
        sex=SEX_LABELS[resident.sex],
        religion=resident.religion,
        marital_status=resident.marital_status,
        occupation=resident.occupation,
        address=f"{resident.address} RT {resident.rt}/RW {resident.rw}",
        village_code=resident.village_code,
        alive=resident.alive,
    )


def full_address(resident: Resident, village: Village) -> str:
    place = f"{village.kind_label.title()} {village.name}"
    return (
        f"{resident.address} RT {resident.rt}/RW {resident.rw}, {place}, "
        f"Kec. {village.district.name}, Kab. Sukoharjo"
    )


@dataclass
class RowProblem:
    row: int  # 1-based line number in the file, the header being line 1
    column: str
    reason: str

    def __str__(self) -> str:
        return f"baris {self.row}, kolom {self.column}: {self.reason}"


@dataclass
class RowChange:
    """One imported row that added or changed a resident: its line, the resident's masked NIK
    and, for an update, the names of the columns whose values changed."""

    row: int
    nik: str  # masked
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        changed = f": {', '.join(self.fields)}" if self.fields else ""
        return f"baris {self.row}, NIK {self.nik}{changed}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    added: list[RowChange] = field(default_factory=list)
    changed: list[RowChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"{self.created} baru, {self.updated} diperbarui, {self.unchanged} tidak berubah, "
            f"{len(self.problems)} masalah"
        )


def import_csv(
    session: Session, source: Path | str, village_code: str, actor: Actor | None = None
) -> ImportReport:
    """Validate every row first; write only if all rows are good (all-or-nothing). Residents
    already registered in this village are updated (the report names the changed columns of
    each row); a NIK registered elsewhere is an error. With ``actor``, a written import is one
    audit event (``resident.import``: counts, no personal data)."""
    village = session.get(Village, village_code)
    if village is None:
        raise InvalidInput(f"Kode desa/kelurahan tidak dikenal: {village_code!r}")
    text = Path(source).read_text(encoding="utf-8-sig") if isinstance(source, Path) else source
    reader = csv.DictReader(io.StringIO(text))
    report = ImportReport()
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        report.problems.append(RowProblem(1, ",".join(missing), "kolom tidak ada di header"))
        return report
    columns = CSV_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in (reader.fieldnames or []))
    rows = _read_rows(reader, columns, report)
    if report.problems:
        return report
    existing = {
        r.nik: r
        for r in session.scalars(
            select(Resident).where(Resident.nik.in_([v["nik"] for _, v in rows]))
        )
    }
    for line, values in rows:
        current = existing.get(values["nik"])
        if current is not None and current.village_code != village_code:
            report.problems.append(RowProblem(line, "nik", "NIK terdaftar di desa/kelurahan lain"))
    if report.problems:
        return report
    for line, values in rows:
        _apply_row(session, report, line, values, existing.get(values["nik"]), village_code)
    session.flush()
    if actor is not None and (report.created or report.updated):
        from engine.people.resident_admin import audit_import  # it imports this module

        audit_import(session, actor, village_code, report)
    return report


def _read_rows(reader, columns: tuple[str, ...], report: ImportReport) -> list[tuple[int, dict]]:
    rows: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        values = {k: (raw.get(k) or "").strip() for k in columns}
        row_problems = _check_row(line, values, report)
        if values["nik"] in seen and not row_problems:
            row_problems.append(
                RowProblem(line, "nik", f"NIK sama dengan baris {seen[values['nik']]}")
            )
        seen.setdefault(values["nik"], line)
        report.problems.extend(row_problems)
        if not row_problems:
            rows.append((line, values))
    return rows


def _apply_row(session, report, line, values, current, village_code) -> None:
    attrs = {**values, "birth_date": date.fromisoformat(values["birth_date"])}
    for column in OPTIONAL_COLUMNS:
        if column in attrs and not attrs[column]:
            attrs[column] = DEFAULTS.get(column)
    if current is None:
        session.add(Resident(**{**DEFAULTS, **attrs}, village_code=village_code, alive=True))
        report.created += 1
        report.added.append(RowChange(line, mask_nik(values["nik"])))
        return
    changed = tuple(k for k, v in attrs.items() if k != "nik" and getattr(current, k) != v)
    for key in changed:
        setattr(current, key, attrs[key])
    if changed:
        report.updated += 1
        report.changed.append(RowChange(line, mask_nik(values["nik"]), changed))
    else:
        report.unchanged += 1


def _check_row(line: int, v: dict[str, str], report: ImportReport) -> list[RowProblem]:
    warnings: list[str] = []
    errors = check_values(v, warnings=warnings, optional=OPTIONAL_COLUMNS)
    report.warnings.extend(RowProblem(line, "nik", w) for w in warnings)
    return [RowProblem(line, column, reason) for column, reason in errors.items()]


def check_values(
    v: dict[str, str],
    *,
    warnings: list[str] | None = None,
    optional: tuple[str, ...] = OPTIONAL_COLUMNS,
) -> dict[str, str]:
    """The one rule for a resident's registry data (the add and correct forms, the API and the
    CSV import): ``v`` maps column names to typed text and is normalized in place (NIK without
    separators, sex upper-case, RT/RW zero-padded); the answer maps each bad column to an
    Indonesian reason. The NIK's birth date and sex must match the record's."""
    errors: dict[str, str] = {}
    for column in [*CSV_COLUMNS, *optional]:
        if column not in v:
            continue
        try:
            v[column] = clean_text(v[column], max_length=None)
        except TextProblem as exc:
            errors[column] = str(exc)
            continue
        if not v[column] and column not in optional:
            errors[column] = "wajib diisi"
    parsed = _check_nik(v, errors, warnings)
    birth = _check_choices(v, errors)
    for column, limit in TEXT_LIMITS.items():
        if v.get(column) and column not in errors:
            problem = _text_problem(v[column], limit)
            if problem:
                errors[column] = problem
    if parsed is not None and birth is not None and v.get("sex") in SEX_LABELS:
        mismatch = check_nik_matches(parsed, birth, v["sex"])
        if mismatch:
            errors["nik"] = "; ".join(mismatch)
    return errors


def _check_nik(v: dict, errors: dict, warnings: list[str] | None) -> ParsedNik | None:
    if not v.get("nik") or "nik" in errors:
        return None
    try:
        parsed = parse_nik(v["nik"])
    except NikError as exc:
        errors["nik"] = str(exc)
        return None
    v["nik"] = parsed.nik
    if warnings is not None:
        warnings.extend(parsed.warnings)
    return parsed


def _check_choices(v: dict, errors: dict) -> date | None:
    """Dates, codes and choice lists; the birth date if it is one."""
    birth = None
    if v.get("kk") and "kk" not in errors and not (len(v["kk"]) == 16 and v["kk"].isdigit()):
        errors["kk"] = "No. KK harus 16 digit angka"
    if v.get("birth_date") and "birth_date" not in errors:
        try:
            birth = date.fromisoformat(v["birth_date"])
        except ValueError:
            errors["birth_date"] = f"tanggal tidak valid: {v['birth_date']!r} (format YYYY-MM-DD)"
        else:
            if birth > today_wib():
                errors["birth_date"] = "tanggal lahir tidak boleh di masa depan"
    if v.get("sex") and "sex" not in errors:
        v["sex"] = v["sex"].upper()
        if v["sex"] not in SEX_LABELS:
            errors["sex"] = "isi L (laki-laki) atau P (perempuan)"
    for column, choices in CHOICES.items():
        if v.get(column) and column not in errors and v[column] not in choices:
            errors[column] = f"pilihan tidak dikenal (pilihan: {', '.join(choices)})"
    for column in ("rt", "rw"):
        if v.get(column) and column not in errors:
            if not (v[column].isascii() and v[column].isdigit() and len(v[column]) <= 3):
                errors[column] = "harus angka, paling banyak 3 digit"
            else:
                v[column] = v[column].zfill(3)
    return birth if "birth_date" not in errors else None


def _text_problem(text: str, limit: int) -> str | None:
    if len(text) > limit:
        return f"terlalu panjang: maksimal {limit} karakter"
    return unprintable_problem(text)
