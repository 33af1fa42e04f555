"""Loading workflow files: every problem of a file at once, the workflows of a folder, and the
exact YAML + template sources a request pins."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import jinja2
import jinja2.meta
import yaml

from engine.requests.workflows.checks import (
    _check_graph,
    _check_keys,
    _citizen_requestable,
    _effects,
    _fields,
    _is_text,
    _Problems,
    _public_facts,
    _steps,
    _subjects,
    _template,
)
from engine.requests.workflows.sample import _sample
from engine.requests.workflows.spec import (
    _OPTIONAL_KEYS,
    _REQUIRED_KEYS,
    _SLUG,
    TERMINAL_STATES,
    StepSpec,
    WorkflowError,
    WorkflowErrors,
    WorkflowSpec,
    number_format_problem,
)
from engine.requests.workflows.yaml_lines import _DuplicateKey, _Loader, _Map


def _read_yaml(p: _Problems, path: Path) -> tuple[bytes, _Map] | None:
    """The file's bytes and its top-level mapping, or None with the problem added."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as e:
        p.add(None, f"berkas tidak bisa dibaca: {e.strerror or e}")
        return None
    try:
        doc = yaml.load(raw_bytes.decode("utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader)
    except UnicodeDecodeError:
        p.add(None, "berkas harus berenkode UTF-8")
        return None
    except _DuplicateKey as e:
        what = f"kunci '{e.key}' ganda" if e.key is not None else "kunci tidak valid"
        p.add(e.line, what)
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        p.add(mark.line + 1 if mark else None, f"YAML tidak valid: {e.problem or e.context}")
        return None
    except yaml.YAMLError as e:
        p.add(None, f"YAML tidak valid: {e}")
        return None
    if not isinstance(doc, _Map):
        p.add(getattr(doc, "line", 1), "isi berkas harus berupa mapping (id: ..., version: ...)")
        return None
    return raw_bytes, doc


def _check_header(p: _Problems, doc: _Map) -> None:
    """The top-level keys, id, version, the texts and the number format."""
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


def _steps_from(p: _Problems, doc: _Map) -> tuple[dict[str, StepSpec], str]:
    """The steps and the initial step, with the graph checked."""
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
    return steps, initial


def workflow_problems(path: Path) -> tuple[WorkflowSpec | None, list[WorkflowError]]:
    """Load a workflow file and return (spec, []) or (None, every problem found)."""
    path = Path(path)
    p = _Problems(path)
    read = _read_yaml(p, path)
    if read is None:
        return None, p.items
    raw_bytes, doc = read
    _check_header(p, doc)
    subjects = _subjects(p, doc.get("subjects"), doc.vline("subjects")) if "subjects" in doc else ()
    subject_map = {s.name: s for s in subjects}
    fields = _fields(p, doc.get("fields"), doc.vline("fields"), set(subject_map))
    template, template_path, template_bytes = (
        _template(p, path, doc) if "template" in doc else ("", path.parent, b"")
    )
    steps, initial = _steps_from(p, doc)
    effects = _effects(
        p, doc.get("effects"), doc.vline("effects"), set(steps) | TERMINAL_STATES, subject_map
    )
    public_facts = _public_facts(
        p, doc.get("public_facts"), doc.kline("public_facts"), subject_map, fields
    )
    citizen_requestable = _citizen_requestable(p, doc, subjects, steps, initial)
    sample = _sample(p, doc, fields)

    sources = template_bundle(template_path) if template_bytes else {}
    if p.items:
        return None, p.items
    return (
        WorkflowSpec(
            id=doc["id"],
            version=doc["version"],
            title=doc["title"].strip(),
            classification=doc["classification"].strip(),
            number_format=doc["number_format"],
            subjects=subjects,
            fields=fields,
            template=template,
            template_path=template_path,
            steps=MappingProxyType(steps),
            initial_state=initial,
            effects=effects,
            sha256=_bundle_sha256(raw_bytes, sources),
            source_path=path.resolve(),
            description=doc.get("description"),
            template_sources=MappingProxyType(sources),
            public_facts=public_facts,
            citizen_requestable=citizen_requestable,
            sample=sample,
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
