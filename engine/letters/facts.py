"""A letter's public facts: the few facts its type declares (``public_facts`` in the workflow
YAML) that the public page and the QR seal show, so a reader comparing paper with page or seal
catches a changed fact (UU 27/2022: the minimum; a NIK is always masked).

Computed once, at issue time, from the letter content exactly as it is printed, and stored on
the letter (``letters.public_facts``): ``[{"label": ..., "value": ...}, ...]``.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

from engine.dates import format_jam, format_tanggal
from engine.letters.render import LetterContent
from engine.people.nik import mask_nik
from engine.requests.workflows import PublicFactSpec, WorkflowSpec


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
