"""The regency's numbering settings, written only by the regency admin and audited
(engine.regency_settings):

- "numbering.mode": "per_classification" (default: one register per classification code, per
  village and year) or "per_village" (one register per village and year for every letter, the
  village's agenda of outgoing letters; each number still carries its letter's own code).
- "classification.codes": {workflow id: code}. A letter type's code is this setting when it
  has one, else the ``classification:`` of its YAML (docs/numbering.md lists the codes of
  Permendagri 83/2022 they were taken from).

Both are read when a letter is drafted (engine.letters.issuance); a letter in flight keeps the
code and register it was drafted with. See engine.letters.numbering for how a register starts
after a switch, so no number is used twice."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.orm import Session

from engine import regency_settings
from engine.errors import InvalidInput
from engine.letters.numbering import MODES, PER_CLASSIFICATION, Register, register_for
from engine.people.users import Actor

MODE_KEY = "numbering.mode"
CODES_KEY = "classification.codes"

# Codes of the archive classification: digits in groups separated by dots, "400.12.3.1".
CODE_RE = re.compile(r"^[0-9]{3}(\.[0-9]{1,3}){0,4}$")

MODE_LABELS = {
    PER_CLASSIFICATION: "Satu register per kode klasifikasi",
    "per_village": "Satu register per desa (agenda surat keluar)",
}


def mode(session: Session) -> str:
    value = regency_settings.get(session, MODE_KEY)
    return value if value in MODES else PER_CLASSIFICATION


def codes(session: Session) -> dict[str, str]:
    value = regency_settings.get(session, CODES_KEY) or {}
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def classification_for(session: Session, workflow_id: str, default: str) -> str:
    """The code a letter type prints: the regency's setting, else its YAML's."""
    return codes(session).get(workflow_id, default)


def register_of(
    session: Session, village_code: str, workflow_id: str, default_code: str, year: int
) -> tuple[str, Register]:
    """The letter's code and the register its seq comes from, as the settings say now."""
    code = classification_for(session, workflow_id, default_code)
    return code, register_for(village_code, code, year, mode(session))


def set_mode(session: Session, by: Actor, value: str) -> None:
    regency_settings.require_change(by)
    if value not in MODES:
        raise InvalidInput(
            f"Mode penomoran tidak dikenal: {value!r}.",
            {"mode": "Pilih salah satu mode penomoran."},
        )
    current = regency_settings.get(session, MODE_KEY)
    if value == PER_CLASSIFICATION and current is None:
        return  # the default already: nothing to record
    regency_settings.put(session, by, MODE_KEY, value)


def check_code(code: str) -> str:
    code = code.strip()
    if not CODE_RE.match(code):
        raise InvalidInput(
            f"Kode klasifikasi {code!r} tidak sah: angka bertitik seperti 400.12.3.1.",
            {"code": "Kode klasifikasi berupa angka bertitik, misalnya 400.12.3.1."},
        )
    return code


def set_code(
    session: Session, by: Actor, known_ids: Iterable[str], workflow_id: str, code: str | None
) -> None:
    """Set (or with None or "", clear back to the YAML's) one letter type's code."""
    regency_settings.require_change(by)
    if workflow_id not in set(known_ids):
        raise InvalidInput(
            f"Jenis surat tidak dikenal: {workflow_id!r}.",
            {"workflow_id": "Pilih jenis surat dari daftar."},
        )
    table = dict(codes(session))
    if code is None or not code.strip():
        table.pop(workflow_id, None)
    else:
        table[workflow_id] = check_code(code)
    regency_settings.put(session, by, CODES_KEY, table or None)
