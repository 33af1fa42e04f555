"""The workflows in force, and the exact versions that requests pinned.

A request records the workflow id, version and sha256 it started with; the YAML and template text
are kept in `workflow_snapshots`, so an edited file on disk never changes a request in flight.

The version in force of a letter type is its latest row in `workflow_publications` (a version
the regency admin published or rolled back to from the browser, engine.requests.letter_type_editor)
and, for a type never published, the file on disk. Several app processes share one database: a
catalog bound to it (`factory`) reads the latest publication id, a one-row query, before it
answers `current` (every path that starts a request) and, at most once per `recheck_seconds`,
before `specs` (the lists of types); when the id moved it reloads the types in force."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound
from engine.requests.workflows import WorkflowError, WorkflowSpec, load_workflow, load_workflows
from engine.storage.db import read_only
from engine.storage.models import LetterRequest, WorkflowSnapshot
from engine.storage.workflow_publications import WorkflowPublication
from engine.timeutil import now_utc

log = logging.getLogger(__name__)

# How stale the lists of types (``specs``) may be in a process that did not publish; starting a
# request (``current``) always checks.
RECHECK_SECONDS = 1.0


class WorkflowCatalog:
    def __init__(
        self,
        directory: Path,
        factory: sessionmaker[Session] | None = None,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self.directory = directory
        self.disk_specs: Mapping[str, WorkflowSpec] = MappingProxyType(load_workflows(directory))
        self._specs: Mapping[str, WorkflowSpec] = self.disk_specs
        self._by_sha: dict[str, WorkflowSpec] = {s.sha256: s for s in self.disk_specs.values()}
        self._factory = factory
        self.recheck_seconds = recheck_seconds
        self._marker: int | None = None  # the latest publication id the specs reflect
        self._checked = float("-inf")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the types in force

    @property
    def specs(self) -> Mapping[str, WorkflowSpec]:
        """Every letter type in force, by id (read-only)."""
        self._refresh(force=False)
        return self._specs

    def current(self, workflow_id: str) -> WorkflowSpec:
        self._refresh(force=True)
        spec = self._specs.get(workflow_id)
        if spec is None:
            known = ", ".join(sorted(self._specs))
            raise NotFound(f"Jenis surat tidak dikenal: {workflow_id!r} (tersedia: {known})")
        return spec

    def bind(self, factory: sessionmaker[Session]) -> None:
        """Follow the publications in this database (Services binds its catalog)."""
        self._factory = factory
        self.invalidate()

    def invalidate(self) -> None:
        """Check the publications again on the next look-up."""
        self._checked = float("-inf")

    def invalidate_after_commit(self, session: Session) -> None:
        """Check again once ``session`` commits (a publication made in it)."""
        event.listen(session, "after_commit", lambda _s: self.invalidate(), once=True)

    def _refresh(self, *, force: bool) -> None:
        if self._factory is None:
            return
        if not force and time.monotonic() - self._checked < self.recheck_seconds:
            return
        try:
            with read_only(self._factory) as session:
                marker = session.scalar(select(func.max(WorkflowPublication.id)))
                if marker != self._marker:
                    with self._lock:
                        self._specs = MappingProxyType(self._in_force(session))
                        self._marker = marker
        except DBAPIError:
            return  # a database not migrated yet (or away): keep what we have, try again later
        self._checked = time.monotonic()

    def _in_force(self, session: Session) -> dict[str, WorkflowSpec]:
        latest = (
            select(func.max(WorkflowPublication.id))
            .group_by(WorkflowPublication.workflow_id)
            .scalar_subquery()
        )
        specs = dict(self.disk_specs)
        rows = session.scalars(
            select(WorkflowPublication).where(WorkflowPublication.id.in_(latest))
        )
        for row in rows:
            try:
                specs[row.workflow_id] = self.by_sha(session, row.sha256)
            except WorkflowError as e:  # checked when published; a later, stricter loader?
                log.error("published %s v%s no longer loads: %s", row.workflow_id, row.version, e)
        return specs

    def in_force(
        self, session: Session, workflow_id: str
    ) -> tuple[WorkflowSpec | None, int | None]:
        """The spec in force for ``workflow_id`` read from ``session`` (not the cache), and the
        id of the publication that put it in force (None: the file on disk)."""
        row = session.scalars(
            select(WorkflowPublication)
            .where(WorkflowPublication.workflow_id == workflow_id)
            .order_by(WorkflowPublication.seq.desc())
            .limit(1)
        ).first()
        if row is None:
            return self.disk_specs.get(workflow_id), None
        return self.by_sha(session, row.sha256), row.id

    # ------------------------------------------------------------------ pinned versions

    def by_sha(self, session: Session, sha256: str) -> WorkflowSpec:
        spec = self._by_sha.get(sha256)
        if spec is not None:
            return spec
        snap = session.get(WorkflowSnapshot, sha256)
        if snap is None:
            raise NotFound(f"Versi alur {sha256[:12]} hilang.")
        spec = _load_snapshot(snap)
        self._by_sha[spec.sha256] = spec
        return spec

    def remember(
        self, session: Session, spec: WorkflowSpec, *, yaml_text: str | None = None
    ) -> None:
        """Keep the exact YAML + templates of ``spec`` (once per sha256). ``yaml_text``: the
        text as checked, for a spec whose file is gone (the editor's temporary copy)."""
        if session.get(WorkflowSnapshot, spec.sha256) is None:
            session.add(
                WorkflowSnapshot(
                    sha256=spec.sha256,
                    workflow_id=spec.id,
                    version=spec.version,
                    yaml_text=yaml_text
                    if yaml_text is not None
                    else spec.source_path.read_text(encoding="utf-8"),
                    template_name=spec.template,
                    templates=dict(spec.template_sources),
                    created_at=now_utc(),
                )
            )

    def pinned(self, session: Session, request: LetterRequest) -> WorkflowSpec:
        spec = self._by_sha.get(request.workflow_sha256)
        if spec is not None:
            return spec
        snap = session.get(WorkflowSnapshot, request.workflow_sha256)
        if snap is None:
            raise NotFound(f"Versi alur {request.workflow_id} v{request.workflow_version} hilang.")
        spec = _load_snapshot(snap)
        self._by_sha[spec.sha256] = spec
        return spec


def _load_snapshot(snap: WorkflowSnapshot) -> WorkflowSpec:
    # The loader works on files (for file:line errors); re-materialise the pinned pair.
    root = Path(tempfile.mkdtemp(prefix=f"wf-{snap.sha256[:12]}-"))
    folder = (root / snap.template_name).parent
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in snap.templates.items():
        (folder / name).write_text(text, encoding="utf-8")
    source = root / f"{snap.workflow_id}.yaml"
    source.write_text(snap.yaml_text, encoding="utf-8")
    return load_workflow(source)
