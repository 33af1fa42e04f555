"""The optional ``sample:`` section of a workflow YAML: example field values the letter type
editor fills a DRAFT preview with (engine.requests.letter_type_editor)::

    sample:
      keperluan: Melamar pekerjaan
      date_of_death: 2026-11-20

Each key must be a declared field and each value must be one that field accepts (the same
cleaning as a typed form value). Fields without a sample get a made-up value in the preview."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from engine.requests.workflows.checks import _Problems
from engine.requests.workflows.spec import FieldSpec
from engine.requests.workflows.yaml_lines import _Map


def _sample(p: _Problems, doc: _Map, fields: tuple[FieldSpec, ...]) -> Mapping[str, object]:
    """The cleaned sample values by field name; problems added with their line."""
    if "sample" not in doc:
        return MappingProxyType({})
    raw = doc["sample"]
    if not isinstance(raw, _Map):
        p.add(doc.vline("sample"), "sample: harus berupa mapping nama isian -> contoh nilai")
        return MappingProxyType({})
    by_name = {f.name: f for f in fields}
    values: dict[str, object] = {}
    for name, value in raw.items():
        field = by_name.get(name) if isinstance(name, str) else None
        if field is None:
            known = ", ".join(by_name) or "-"
            p.add(
                raw.kline(name), f"sample: isian '{name}' tidak ada di fields (yang ada: {known})"
            )
            continue
        if isinstance(value, bool | int | float) and field.type in ("text", "textarea", "choice"):
            value = str(value)  # YAML reads `tahun: 2018` as a number; a text field takes it
        try:
            values[name] = field.clean(value)
        except ValueError as e:
            p.add(raw.vline(name), f"sample: {name}: {e}")
    return MappingProxyType(values)
