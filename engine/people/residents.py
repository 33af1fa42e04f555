"""The resident registry: look-up by NIK and all-or-nothing CSV import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.people.nik import NikError, check_nik_matches, parse_nik
from engine.people.users import Actor
from engine.requests.workflows import WorkflowSpec
from engine.storage.models import Resident, Village

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
class ImportReport:
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def import_csv(session: Session, source: Path | str, village_code: str) -> ImportReport:
    """Validate every row first; write only if all rows are good (all-or-nothing). Residents
    already registered in this village are updated; a NIK registered elsewhere is an error."""
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
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        values = {k: (raw.get(k) or "").strip() for k in CSV_COLUMNS}
        row_problems = _check_row(line, values, report)
        if values["nik"] in seen and not row_problems:
            row_problems.append(
                RowProblem(line, "nik", f"NIK sama dengan baris {seen[values['nik']]}")
            )
        seen.setdefault(values["nik"], line)
        report.problems.extend(row_problems)
        if not row_problems:
            rows.append(values)
    if report.problems:
        return report
    existing = {
        r.nik: r
        for r in session.scalars(select(Resident).where(Resident.nik.in_([r["nik"] for r in rows])))
    }
    for values in rows:
        current = existing.get(values["nik"])
        if current is not None and current.village_code != village_code:
            report.problems.append(
                RowProblem(0, "nik", f"NIK {values['nik']} terdaftar di desa lain")
            )
    if report.problems:
        return report
    for values in rows:
        attrs = {**values, "birth_date": date.fromisoformat(values["birth_date"])}
        current = existing.get(values["nik"])
        if current is None:
            session.add(Resident(**attrs, village_code=village_code, alive=True))
            report.created += 1
        else:
            for key, value in attrs.items():
                setattr(current, key, value)
            report.updated += 1
    session.flush()
    return report


def _check_row(line: int, v: dict[str, str], report: ImportReport) -> list[RowProblem]:
    problems: list[RowProblem] = []

    def bad(column: str, reason: str) -> None:
        problems.append(RowProblem(line, column, reason))

    for column in CSV_COLUMNS:
        if not v[column]:
            bad(column, "wajib diisi")
    parsed = None
    if v["nik"]:
        try:
            parsed = parse_nik(v["nik"])
            v["nik"] = parsed.nik
            for warning in parsed.warnings:
                report.warnings.append(RowProblem(line, "nik", warning))
        except NikError as exc:
            bad("nik", str(exc))
    if v["kk"] and not (len(v["kk"]) == 16 and v["kk"].isdigit()):
        bad("kk", "No. KK harus 16 digit angka")
    birth = None
    if v["birth_date"]:
        try:
            birth = date.fromisoformat(v["birth_date"])
        except ValueError:
            bad("birth_date", f"tanggal tidak valid: {v['birth_date']!r} (format YYYY-MM-DD)")
    if v["sex"]:
        v["sex"] = v["sex"].upper()
        if v["sex"] not in SEX_LABELS:
            bad("sex", "isi L (laki-laki) atau P (perempuan)")
    if v["religion"] and v["religion"] not in RELIGIONS:
        bad("religion", f"agama tidak dikenal (pilihan: {', '.join(RELIGIONS)})")
    if v["marital_status"] and v["marital_status"] not in MARITAL_STATUSES:
        bad("marital_status", f"status tidak dikenal (pilihan: {', '.join(MARITAL_STATUSES)})")
    for column in ("rt", "rw"):
        if v[column] and not (v[column].isdigit() and len(v[column]) <= 3):
            bad(column, "harus angka, paling banyak 3 digit")
        elif v[column]:
            v[column] = v[column].zfill(3)
    if parsed is not None and birth is not None and v["sex"] in SEX_LABELS:
        for reason in check_nik_matches(parsed, birth, v["sex"]):
            bad("nik", reason)
    return problems
