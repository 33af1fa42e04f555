"""GET /api/workflows: the letter types in force, their fields and steps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ActorDep, ServicesDep

router = APIRouter()


@router.get("/workflows")
def list_workflows(svc: ServicesDep, actor: ActorDep) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "version": s.version,
            "title": s.title,
            "sha256": s.sha256,
            "subjects": [
                {"name": x.name, "label": x.label, "required": x.required} for x in s.subjects
            ],
            "fields": [
                {
                    "name": f.name,
                    "label": f.label,
                    "type": f.type,
                    "required": f.required,
                    "options": list(f.options),
                }
                for f in s.fields
            ],
            "steps": {
                n: {"role": st.role, "actions": dict(st.actions)} for n, st in s.steps.items()
            },
        }
        for s in svc.catalog.specs.values()
    ]
