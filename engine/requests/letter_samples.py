"""Sample data for a letter type's DRAFT preview in the letter type editor
(engine.requests.letter_type_editor): made-up people and village, the YAML's ``sample:`` values
and, for a field without one, a made-up value of its type. Nothing here comes from the resident
registry."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import date, time

from engine.dates import today_wib
from engine.letters.render import LetterContent, Person, SignerInfo, VillageInfo
from engine.requests.workflows import FieldSpec, WorkflowSpec

SAMPLE_NUMBER = "000/001/33.11.01.2001/I/2026"
SAMPLE_URL = "https://contoh.invalid/v/CONTOH"
_SAMPLE_PEOPLE = (
    ("BUDI SANTOSO", "L", "3311010101800001"),
    ("SITI AMINAH", "P", "3311014202850002"),
    ("AGUS SETIAWAN", "L", "3311010303900003"),
    ("DEWI LESTARI", "P", "3311014404920004"),
)
SAMPLE_VILLAGE = VillageInfo(
    code="33.11.01.2001",
    name="CONTOH",
    kind="desa",
    district_name="CONTOH",
    address="Jalan Contoh No. 1",
    postal_code="57500",
)


def sample_content(spec: WorkflowSpec, *, today: date | None = None) -> LetterContent:
    """The letter's content filled with made-up people and the YAML's ``sample:`` values
    (a made-up value for a field without one)."""
    today = today or today_wib()
    data = {f.name: spec.sample.get(f.name, _made_up(f, today)) for f in spec.fields}
    subjects = {s.name: _sample_person(i, s.sex) for i, s in enumerate(spec.subjects)}
    return LetterContent(
        title=spec.title.upper(),
        number=None,
        village=SAMPLE_VILLAGE,
        signer=SignerInfo(title_lines=("KEPALA DESA CONTOH",), name="NAMA KEPALA DESA", nip=None),
        subjects=subjects,
        subject_labels={s.name: s.label for s in spec.subjects},
        fields=spec.validate_data(data, today=today),
        field_labels={f.name: f.label for f in spec.fields},
        issued_on=today,
    )


def _made_up(field: FieldSpec, today: date) -> object:
    if field.type == "choice":
        return field.options[0] if field.options else None
    if field.type == "date":
        return today
    if field.type == "time":
        return time(8, 0)
    if field.type == "number":
        n = 1 if field.min is None else field.min
        return n if field.max is None or n <= field.max else field.max
    if field.type == "nik":
        return _SAMPLE_PEOPLE[0][2]
    text = f"Contoh {field.label}"
    return text[: field.max_length] if field.max_length else text


def _sample_person(index: int, sex: str | None) -> Person:
    people = [p for p in _SAMPLE_PEOPLE if sex is None or p[1] == sex] or list(_SAMPLE_PEOPLE)
    name, person_sex, nik = people[index % len(people)]
    known = {
        "name": name,
        "nik": nik,
        "birth_place": "Sukoharjo",
        "birth_date": date(1980, 1, 1),
        "sex": "Laki-laki" if person_sex == "L" else "Perempuan",
        "religion": "Islam",
        "marital_status": "Kawin",
        "occupation": "Wiraswasta",
        "address": "Dusun Contoh RT 001 RW 001, Desa Contoh",
    }
    # Fields added to Person later get an empty value rather than breaking the preview.
    return Person(**{f.name: known.get(f.name, "") for f in dataclass_fields(Person)})
