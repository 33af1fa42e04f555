"""The checks of one workflow YAML, part by part: each returns the spec part it checked and adds
what is wrong, with its line, to the problems."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.requests.workflows.spec import (
    _NAME,
    _TYPE_ONLY_KEYS,
    ACTIONS,
    DEFAULT_MAX_LENGTH,
    DELEGATE_MARKS,
    DELEGATE_ROLES,
    EFFECT_KINDS,
    FIELD_TYPES,
    PUBLIC_FACT_LABEL_MAX,
    PUBLIC_FACT_SUBJECT_ATTRS,
    PUBLIC_FACTS_MAX,
    ROLES,
    TERMINAL_STATES,
    EffectSpec,
    FieldSpec,
    PublicFactSpec,
    StepSpec,
    SubjectSpec,
    WorkflowError,
)
from engine.requests.workflows.yaml_lines import _Map, _Seq

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


def _choice_options(p: _Problems, spec: _Map, where: str) -> tuple[str, ...]:
    """The options of a choice field: a non-empty list of distinct texts."""
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
        return tuple(o.strip() for o in raw_opts)
    return ()


def _max_length(p: _Problems, spec: _Map, ftype: str, where: str) -> int | None:
    """A text field's maximum length: a positive integer, or the type's default."""
    max_length = spec.get("max_length", DEFAULT_MAX_LENGTH.get(ftype))
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        p.add(spec.vline("max_length"), f"{where}: 'max_length' harus bilangan bulat positif")
        max_length = DEFAULT_MAX_LENGTH.get(ftype)
    return max_length


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
            ("required", "options", "max_length", "min", "max", "whole", "not_future"),
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

        options = _choice_options(p, spec, where) if ftype == "choice" else ()
        max_length = _max_length(p, spec, ftype, where)
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
                whole=_bool(p, spec, "whole", where, False),
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


def _citizen_requestable(
    p: _Problems,
    doc: _Map,
    subjects: tuple[SubjectSpec, ...],
    steps: dict[str, StepSpec],
    initial: str,
) -> bool:
    """``citizen_requestable: true`` lets residents ask online. A resident names only
    themselves (the first subject; any other must be optional, for the operator to add), and
    the request enters the initial step, which must be the operator's: they complete or
    correct it before the chain runs."""
    if "citizen_requestable" not in doc:
        return False
    value = _bool(p, doc, "citizen_requestable", "citizen_requestable", False)
    if not value:
        return False
    line = doc.vline("citizen_requestable")
    if initial in steps and steps[initial].role != "operator":
        p.add(
            line,
            "citizen_requestable: permohonan warga masuk ke langkah awal, yang harus "
            f"dikerjakan operator (langkah '{initial}' dikerjakan '{steps[initial].role}')",
        )
    required_others = [s.name for s in subjects[1:] if s.required]
    if required_others:
        p.add(
            line,
            "citizen_requestable: warga hanya mengisi NIK-nya sendiri (subjek pertama); "
            f"subjek lain harus 'required: false' ({', '.join(required_others)})",
        )
    return True
