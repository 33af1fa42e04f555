"""A letter's public facts: the few facts its type declares (``public_facts`` in the workflow
YAML) that the public page and the QR seal show, so a reader comparing paper with page or seal
catches a changed fact (UU 27/2022: the minimum; a NIK is always masked).

Computed once, at issue time, from the letter content exactly as it is printed, and stored on
the letter (``letters.public_facts``): ``[{"label": ..., "value": ...}, ...]``.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dates import format_jam, format_tanggal
from engine.letters.render import LetterContent
from engine.people.nik import mask_nik
from engine.requests.workflows import PublicFactSpec, WorkflowSpec
from engine.storage.models import LetterRequest, Resident


def _text(value: object, *, nik: bool = False) -> str | None:
    if value is None:
        return None
    if nik:
        return mask_nik(str(value))
    if isinstance(value, date):
        return format_tanggal(value)
    if isinstance(value, time):
        return format_jam(value)
    if isinstance(value, Decimal | int):
        return str(value)
    text = " ".join(str(value).split())  # as printed: whitespace collapses
    return text or None


def _value(spec: WorkflowSpec, fact: PublicFactSpec, content: LetterContent) -> str | None:
    if fact.source == "field":
        ftype = spec.field(fact.name).type
        return _text(content.fields.get(fact.name), nik=ftype == "nik")
    person = content.subjects.get(fact.name)
    if person is None:  # an optional subject the request left out
        return None
    return _text(getattr(person, fact.attr or "name"), nik=fact.attr == "nik")


def public_facts(spec: WorkflowSpec, content: LetterContent) -> list[dict[str, str]]:
    """The letter's public facts; a letter type that declares none shows the first subject's
    name. A fact whose source is empty (an optional field or subject) is left out."""
    if not spec.public_facts:
        main = content.subjects[spec.subjects[0].name]
        return [{"label": "Nama", "value": main.name}]
    out = []
    for fact in spec.public_facts:
        value = _value(spec, fact, content)
        if value is not None:
            out.append({"label": fact.label, "value": value})
    return out


def request_purpose(session: Session, spec: WorkflowSpec, request: LetterRequest) -> str:
    """What a request is for, in one line, for a queue a signer reads: its ``keperluan`` field
    where the type has one, else the type's first public fact ("Nama: ..."); "" if empty."""
    if any(f.name == "keperluan" for f in spec.fields):
        return _text(request.data.get("keperluan")) or ""
    if not spec.public_facts:
        return ""
    fact = spec.public_facts[0]
    if fact.source == "field":
        ftype = spec.field(fact.name).type
        raw = request.data.get(fact.name)
        try:
            if raw and ftype == "date":
                raw = date.fromisoformat(str(raw))
            elif raw and ftype == "time":
                raw = time.fromisoformat(str(raw))
        except ValueError:
            pass
        value = _text(raw, nik=ftype == "nik")
    else:
        nik = request.subjects.get(fact.name)
        person = session.scalar(select(Resident).where(Resident.nik == nik)) if nik else None
        value = None
        if person is not None:
            value = _text(getattr(person, fact.attr or "name"), nik=fact.attr == "nik")
    return f"{fact.label}: {value}" if value else ""
