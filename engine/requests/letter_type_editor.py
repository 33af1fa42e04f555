"""The regency admin edits letter types from the browser: check an edited YAML + template pair
(the loader's checks, problems with their line), preview it as a DRAFT PDF filled with sample
data, publish it as a new version, roll back to an earlier one, list the versions.

The edited text is checked as text: it is written into a fresh folder beside a copy of the
partials on disk (``_letter.html.j2``, ``_macros.html.j2``, ...) and loaded from there, exactly
as `suratdesa workflows check` loads files, then the template is rendered once with sample data
so a broken template is found before anyone publishes it.

A publication stores the version's YAML and templates as a ``workflow_snapshots`` row and puts
it in force with a ``workflow_publications`` row (engine.requests.catalog); requests already
started keep the version they pinned. Only the regency admin may do any of this, and every
publish and rollback appends its audit event in the same transaction."""

from __future__ import annotations

import shutil
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.letters.render import render_letter
from engine.people.users import Actor, audit_admin
from engine.requests.catalog import WorkflowCatalog
from engine.requests.letter_samples import SAMPLE_NUMBER, SAMPLE_URL, sample_content
from engine.requests.workflows import FieldErrors, WorkflowSpec, workflow_problems
from engine.storage.workflow_publications import WorkflowPublication
from engine.text import TextProblem, clean_printable
from engine.timeutil import now_utc

MAX_TEXT = 200_000  # characters of one YAML or template: letter types are a few KB
PUBLISH, ROLLBACK = "publish", "rollback"
FILE = "berkas"  # the version key of the file on disk in the version list
NEW_TYPE = ""  # expected_id of a new letter type: its id must not be one in force


class DraftProblems(InvalidInput):
    """An edited letter type that cannot be published (or previewed): every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems[:5]))


@dataclass(frozen=True)
class Problem:
    file: str  # the YAML's name or the template's path as the YAML writes it
    line: int | None
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.reason}"
            if self.line
            else f"{self.file}: {self.reason}"
        )


@dataclass(frozen=True)
class Checked:
    yaml_text: str
    template_text: str
    spec: WorkflowSpec | None  # None when there are problems
    problems: list[Problem]
    template_name: str  # as the YAML names it ("templates/umum.html.j2"), or ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Version:
    key: str  # a publication id, or FILE for the file on disk
    version: int
    sha256: str
    kind: str  # PUBLISH, ROLLBACK or FILE
    by: str | None
    at: datetime | None
    note: str | None
    in_force: bool  # this row put the version in force (the newest publication, or the file)
    current: bool  # the same text as the version in force (nothing to roll back to)


# --------------------------------------------------------------------------- who


def may_edit(actor: Actor) -> bool:
    return actor.role == "admin"


def require_admin(actor: Actor) -> None:
    if not may_edit(actor):
        raise Forbidden("Hanya admin kabupaten yang mengubah jenis surat.")


# --------------------------------------------------------------------------- the edited text


def current_texts(session: Session, catalog: WorkflowCatalog, workflow_id: str) -> tuple[str, str]:
    """The YAML and main template of the version in force, to start editing from."""
    spec, _publication = catalog.in_force(session, workflow_id)
    if spec is None:
        raise NotFound(f"Jenis surat tidak dikenal: {workflow_id!r}")
    yaml_text = spec.source_path.read_text(encoding="utf-8")
    return yaml_text, spec.template_sources.get(spec.template_path.name, "")


def normalised(value: str) -> str:
    """Text as the loader reads it: no byte order mark, LF line ends (a browser's text box
    sends CRLF)."""
    return value.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _text(value: str, what: str) -> str:
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} terlalu panjang (lebih dari {MAX_TEXT} karakter).")
    return normalised(value)


def text_of_upload(data: bytes, what: str) -> str:
    """An uploaded file's text: UTF-8 only (its content is then checked like typed text)."""
    if len(data) > MAX_TEXT * 4:
        raise InvalidInput(f"Berkas {what} terlalu besar.")
    try:
        return _text(data.decode("utf-8"), what)
    except UnicodeDecodeError:
        raise InvalidInput(f"Berkas {what} harus teks berenkode UTF-8.") from None


def _declared(yaml_text: str) -> tuple[str | None, str | None]:
    """The id and template the YAML declares, when it reads at all (the loader says why not)."""
    try:
        doc = yaml.safe_load(yaml_text)
    except yaml.YAMLError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    wf_id, template = doc.get("id"), doc.get("template")
    return (
        wf_id if isinstance(wf_id, str) else None,
        template if isinstance(template, str) else None,
    )


def _safe_relative(name: str | None) -> PurePosixPath | None:
    if not name:
        return None
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        return None
    return rel


@contextmanager
def _materialised(
    directory: Path, yaml_text: str, template_text: str
) -> Iterator[tuple[Path, PurePosixPath | None]]:
    """A temporary folder holding the YAML, the partials on disk and the edited template."""
    wf_id, template = _declared(yaml_text)
    rel = _safe_relative(template)
    root = Path(tempfile.mkdtemp(prefix="wf-edit-"))
    try:
        if rel is not None:
            folder = root / rel.parent
            folder.mkdir(parents=True, exist_ok=True)
            disk_folder = directory / rel.parent
            if disk_folder.is_dir():
                for item in disk_folder.iterdir():
                    if item.is_file():
                        shutil.copyfile(item, folder / item.name)
            (root / rel).write_text(template_text, encoding="utf-8")
        name = wf_id if wf_id and "/" not in wf_id and not wf_id.startswith(".") else "jenis-surat"
        source = root / f"{name}.yaml"
        source.write_text(yaml_text, encoding="utf-8")
        yield source, rel
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- check


def check_draft(
    catalog: WorkflowCatalog,
    actor: Actor,
    yaml_text: str,
    template_text: str,
    *,
    expected_id: str | None = None,
    paper: str = "F4",
) -> Checked:
    """Every problem of an edited pair, as `workflows check` names them, then a trial render."""
    with _checked(catalog, actor, yaml_text, template_text, expected_id, paper) as checked:
        return checked


@contextmanager
def _checked(
    catalog: WorkflowCatalog,
    actor: Actor,
    yaml_text: str,
    template_text: str,
    expected_id: str | None,
    paper: str,
) -> Iterator[Checked]:
    """The edited pair checked, its files kept on disk while the caller renders with them."""
    require_admin(actor)
    yaml_text, template_text = _text(yaml_text, "YAML"), _text(template_text, "Template")
    with _materialised(catalog.directory, yaml_text, template_text) as (source, rel):
        spec, problems = _check_in(
            source, rel, template_text, _expected(catalog, expected_id), paper
        )
        yield Checked(yaml_text, template_text, spec, problems, str(rel) if rel else "")


def _check_in(
    source: Path,
    rel: PurePosixPath | None,
    template_text: str,
    expected_id: str | frozenset[str] | None,
    paper: str,
) -> tuple[WorkflowSpec | None, list[Problem]]:
    root = source.parent
    spec, errors = workflow_problems(source)
    problems = [_problem(e.file, e.line, e.reason, root) for e in errors]
    if rel is not None:
        problems += _syntax_problems(template_text, str(rel))
    if spec is not None and expected_id is not None:
        problems += _id_problems(spec.id, expected_id, source)
    if spec is not None and not problems:
        problems += _render_problems(spec, str(rel), paper)
    return (spec if not problems else None), problems


def _expected(catalog: WorkflowCatalog, expected_id: str | None) -> str | frozenset[str] | None:
    """What the id must be: the type being edited, none of the types in force (NEW_TYPE), or
    anything (None)."""
    return frozenset(catalog.specs) if expected_id == NEW_TYPE else expected_id


def _id_problems(wf_id: str, expected: str | frozenset[str], source: Path) -> list[Problem]:
    line = _line_of(source.read_text(encoding="utf-8"), "id:")
    if isinstance(expected, frozenset):
        if wf_id not in expected:
            return []
        reason = f"id: '{wf_id}' sudah dipakai jenis surat lain; ubah jenis itu dari halamannya"
    elif wf_id != expected:
        reason = (
            f"id: '{wf_id}' bukan jenis surat yang sedang diubah ('{expected}'); "
            "jenis surat baru dibuat dari halaman Jenis surat baru"
        )
    else:
        return []
    return [Problem(source.name, line, reason)]


def _problem(file: str, line: int | None, reason: str, root: Path) -> Problem:
    path = Path(file)
    try:
        shown = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        shown = path.name
    return Problem(shown, line, reason)


def _line_of(text: str, prefix: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if line.startswith(prefix):
            return i
    return None


def _syntax_problems(template_text: str, name: str) -> list[Problem]:
    try:
        jinja2.Environment().parse(template_text)
    except jinja2.TemplateSyntaxError as e:
        return [Problem(name, e.lineno, f"template tidak valid: {e.message}")]
    return []


def _render_problems(spec: WorkflowSpec, name: str, paper: str) -> list[Problem]:
    """A trial render with sample data: what would break the letter when it is signed."""
    try:
        content = replace(sample_content(spec), number=SAMPLE_NUMBER)
        # Rendered as it will be signed (with its QR): a template without <qr/> fails here.
        render_letter(spec.template_path, content, verify_url=SAMPLE_URL, paper=paper)
    except FieldErrors as e:
        return [Problem(name, None, f"contoh isian tidak cocok: {e}")]
    except jinja2.TemplateSyntaxError as e:
        return [Problem(e.name or name, e.lineno, f"template tidak valid: {e.message}")]
    except jinja2.TemplateNotFound as e:
        return [Problem(name, None, f"template '{e.name}' tidak ditemukan")]
    except SecurityError as e:  # the sandbox of engine.letters.render refused it
        line = _template_line(e, spec.template_path)
        reason = f"tidak aman: template tidak boleh menyentuh bagian dalam Python ({e})"
        return [Problem(name, line, reason)]
    except Exception as e:  # noqa: BLE001 - any failure of an edited template is its problem
        return [Problem(name, _template_line(e, spec.template_path), f"surat gagal dibuat: {e}")]
    return []


def _template_line(exc: BaseException, template_path: Path) -> int | None:
    """Jinja rewrites tracebacks onto template lines: the last frame in the edited template."""
    target = str(template_path.resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


# --------------------------------------------------------------------------- preview


def preview_draft(
    catalog: WorkflowCatalog,
    actor: Actor,
    yaml_text: str,
    template_text: str,
    *,
    expected_id: str | None = None,
    paper: str = "F4",
) -> bytes:
    """The edited letter type as a DRAFT PDF with sample data; DraftProblems if it has any."""
    with _checked(catalog, actor, yaml_text, template_text, expected_id, paper) as checked:
        if not checked.ok or checked.spec is None:
            raise DraftProblems(checked.problems)
        spec = checked.spec
        return render_letter(
            spec.template_path, sample_content(spec), verify_url=None, paper=paper, draft=True
        )


def preview_version(
    session: Session, catalog: WorkflowCatalog, actor: Actor, sha256: str, *, paper: str = "F4"
) -> bytes:
    """A stored version (one of the version list) as a DRAFT PDF with sample data."""
    require_admin(actor)
    spec = catalog.by_sha(session, sha256)
    return render_letter(
        spec.template_path, sample_content(spec), verify_url=None, paper=paper, draft=True
    )


# --------------------------------------------------------------------------- publish / rollback


def publish(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    yaml_text: str,
    template_text: str,
    *,
    expected_id: str | None = None,
    note: str | None = None,
    paper: str = "F4",
) -> WorkflowPublication:
    """Put an edited letter type in force as a new version (audited). Its version number must be
    greater than every version of the type ever in force."""
    require_admin(actor)
    checked = check_draft(
        catalog, actor, yaml_text, template_text, expected_id=expected_id, paper=paper
    )
    if not checked.ok or checked.spec is None:
        raise DraftProblems(checked.problems)
    spec = checked.spec
    _check_version_grows(session, catalog, spec, checked.yaml_text)
    catalog.remember(session, spec, yaml_text=checked.yaml_text)
    session.flush()
    row = _add_publication(
        session, catalog, actor, spec.id, spec.version, spec.sha256, PUBLISH, _note(note)
    )
    audit_admin(
        session,
        actor,
        "workflow_published",
        {
            "workflow_id": spec.id,
            "version": spec.version,
            "sha256": spec.sha256,
            "publication_id": row.id,
        },
        reason=row.note,
    )
    return row


def _check_version_grows(
    session: Session, catalog: WorkflowCatalog, spec: WorkflowSpec, yaml_text: str
) -> None:
    in_force, _publication = catalog.in_force(session, spec.id)
    versions = [s.version for s in (in_force, catalog.disk_specs.get(spec.id)) if s is not None]
    published = session.scalar(
        select(func.max(WorkflowPublication.version)).where(
            WorkflowPublication.workflow_id == spec.id
        )
    )
    if published is not None:
        versions.append(published)
    highest = max(versions, default=0)
    if spec.version > highest:
        return
    current = f"v{in_force.version}" if in_force is not None else "-"
    reason = (
        f"version: {spec.version} tidak bisa diterbitkan: nomor versi harus lebih besar dari "
        f"versi yang berlaku ({current})"
    )
    if in_force is None or highest != in_force.version:
        reason += f" dan dari setiap versi yang pernah berlaku (tertinggi v{highest})"
    reason += f"; ubah menjadi version: {highest + 1}"
    name = f"{spec.id}.yaml"
    raise DraftProblems([Problem(name, _line_of(yaml_text, "version:"), reason)])


def rollback(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    workflow_id: str,
    target: str,
    *,
    reason: str,
) -> WorkflowPublication:
    """Put an earlier version back in force (audited): ``target`` is a publication id from
    :func:`versions`, or FILE for the file on disk."""
    require_admin(actor)
    reason = _note(reason) or ""
    if not reason:
        raise InvalidInput("Alasan wajib diisi.", {"reason": "Wajib diisi"})
    spec = _target_spec(session, catalog, workflow_id, target)
    in_force, _publication = catalog.in_force(session, workflow_id)
    if in_force is not None and in_force.sha256 == spec.sha256:
        raise Conflict(f"Versi v{spec.version} ini sudah berlaku.")
    catalog.remember(session, spec)  # the file on disk may never have been pinned yet
    session.flush()
    row = _add_publication(
        session, catalog, actor, workflow_id, spec.version, spec.sha256, ROLLBACK, reason
    )
    audit_admin(
        session,
        actor,
        "workflow_rolled_back",
        {
            "workflow_id": workflow_id,
            "version": spec.version,
            "sha256": spec.sha256,
            "publication_id": row.id,
            "from_version": in_force.version if in_force is not None else None,
            "from_sha256": in_force.sha256 if in_force is not None else None,
            "target": target,
        },
        reason=reason,
    )
    return row


def _target_spec(
    session: Session, catalog: WorkflowCatalog, workflow_id: str, target: str
) -> WorkflowSpec:
    if target == FILE:
        spec = catalog.disk_specs.get(workflow_id)
        if spec is None:
            raise NotFound("Jenis surat ini tidak punya berkas di server.")
        return spec
    row = (
        session.get(WorkflowPublication, int(target))
        if target.isdigit() and len(target) < 10
        else None
    )
    if row is None or row.workflow_id != workflow_id:
        raise NotFound("Versi tidak ditemukan.")
    return catalog.by_sha(session, row.sha256)


def _note(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        text = clean_printable(value, multiline=True, max_length=500)
    except TextProblem as e:
        raise InvalidInput(f"Catatan: {e}") from None
    return text.strip() or None


def _add_publication(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    workflow_id: str,
    version: int,
    sha256: str,
    kind: str,
    note: str | None,
) -> WorkflowPublication:
    seq = session.scalar(
        select(func.coalesce(func.max(WorkflowPublication.seq), 0)).where(
            WorkflowPublication.workflow_id == workflow_id
        )
    )
    row = WorkflowPublication(
        workflow_id=workflow_id,
        seq=seq + 1,
        version=version,
        sha256=sha256,
        kind=kind,
        note=note,
        published_by_id=actor.user_id,
        published_by=actor.full_name or actor.username,
        published_at=now_utc(),
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            "Jenis surat ini baru saja diubah oleh admin lain. Muat ulang halaman dan coba lagi."
        ) from None
    catalog.invalidate_after_commit(session)
    return row


# --------------------------------------------------------------------------- versions


def versions(
    session: Session, catalog: WorkflowCatalog, actor: Actor, workflow_id: str
) -> list[Version]:
    """Every version put in force from the browser, newest first, then the file on disk."""
    require_admin(actor)
    in_force, publication_id = catalog.in_force(session, workflow_id)
    if in_force is None:
        raise NotFound(f"Jenis surat tidak dikenal: {workflow_id!r}")
    rows = session.scalars(
        select(WorkflowPublication)
        .where(WorkflowPublication.workflow_id == workflow_id)
        .order_by(WorkflowPublication.seq.desc())
    ).all()
    found = [
        Version(
            key=str(r.id),
            version=r.version,
            sha256=r.sha256,
            kind=r.kind,
            by=r.published_by,
            at=r.published_at,
            note=r.note,
            in_force=r.id == publication_id,
            current=r.sha256 == in_force.sha256,
        )
        for r in rows
    ]
    disk = catalog.disk_specs.get(workflow_id)
    if disk is not None:
        found.append(
            Version(
                FILE,
                disk.version,
                disk.sha256,
                FILE,
                None,
                None,
                None,
                in_force=publication_id is None,
                current=disk.sha256 == in_force.sha256,
            )
        )
    return found
