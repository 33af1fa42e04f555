"""The JSON API face (FastAPI; OpenAPI at /docs): one router per resource, all under /api.
Bearer tokens from `suratdesa users token NAME`. Every route parses its input, makes one call
into the engine and answers; no business rule lives here."""

from __future__ import annotations

from fastapi import APIRouter

from api import citizens, letters, requests, residents, workflows
from api.deps import SafeJSONResponse
from api.errors import install_error_handlers
from api.schemas import ERROR_RESPONSES

router = APIRouter(
    prefix="/api", default_response_class=SafeJSONResponse, responses=ERROR_RESPONSES
)
for resource in (workflows, residents, requests, letters, citizens):
    router.include_router(resource.router)

__all__ = ["install_error_handlers", "router"]
