"""What every JSON API route depends on: the process's engine objects, the bearer token's actor,
and a JSON answer that can always be sent."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.people.users import Actor, actor_for_token
from engine.services import Services
from engine.storage.db import transaction

bearer = HTTPBearer(auto_error=False)


class SafeJSONResponse(JSONResponse):
    """JSON that can always be sent. Text stored before the text rule (engine.text) may hold a
    lone surrogate, which UTF-8 cannot encode: such a body goes out with \\u escapes instead of a
    500. NaN and infinities are refused by the schema long before they could reach here."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def services(request: Request) -> Services:
    return request.app.state.services


def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    if credentials is None:
        raise HTTPException(401, "Token tidak ada.", headers={"WWW-Authenticate": "Bearer"})
    with transaction(services(request).factory) as session:
        actor = actor_for_token(session, credentials.credentials)
    if actor is None:
        raise HTTPException(401, "Token tidak valid.", headers={"WWW-Authenticate": "Bearer"})
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
ServicesDep = Annotated[Services, Depends(services)]
