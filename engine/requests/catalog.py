"""The workflows in force, and the exact versions that requests pinned.

A request records the workflow id, version and sha256 it started with; the YAML and template text
are kept in `workflow_snapshots`, so an edited file on disk never changes a request in flight."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.requests.workflows import WorkflowSpec, load_workflow, load_workflows
from engine.storage.models import LetterRequest, WorkflowSnapshot
from engine.timeutil import now_utc


class WorkflowCatalog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.specs: dict[str, WorkflowSpec] = load_workflows(directory)
        self._by_sha: dict[str, WorkflowSpec] = {s.sha256: s for s in self.specs.values()}

    def current(self, workflow_id: str) -> WorkflowSpec:
        spec = self.specs.get(workflow_id)
        if spec is None:
            known = ", ".join(sorted(self.specs))
            raise NotFound(f"Jenis surat tidak dikenal: {workflow_id!r} (tersedia: {known})")
        return spec

    def remember(self, session: Session, spec: WorkflowSpec) -> None:
        if session.get(WorkflowSnapshot, spec.sha256) is None:
            session.add(
                WorkflowSnapshot(
                    sha256=spec.sha256,
                    workflow_id=spec.id,
                    version=spec.version,
                    yaml_text=spec.source_path.read_text(encoding="utf-8"),
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
