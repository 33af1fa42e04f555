"""Refusals as JSON: engine errors by the one status table (engine.http_status), FastAPI's
validation errors in Indonesian, and an OpenAPI document that says so."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import SafeJSONResponse
from api.schemas import ErrorOut
from engine.errors import InvalidInput, SuratDesaError
from engine.http_status import http_status
from engine.text import safe_key
from engine.trust.signer_limit import CountedWrongPassphrase, SignerLocked, SignTooSoon
from engine.trust.signing import WrongPassphrase

_PYDANTIC_MESSAGES = {
    "missing": "Wajib diisi",
    "int_type": "Harus berupa bilangan bulat",
    "int_parsing": "Harus berupa bilangan bulat",
    "int_from_float": "Harus berupa bilangan bulat",
    "finite_number": "Harus berupa angka terhingga",
    "string_type": "Harus berupa teks",
    "string_too_long": "Terlalu panjang",
    "dict_type": "Harus berupa objek",
    "model_attributes_type": "Harus berupa objek",
    "json_invalid": "JSON tidak valid",
    "json_type": "JSON tidak valid",
    "bool_type": "Harus berupa true/false",
    "bool_parsing": "Harus berupa true/false",
}


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in ("less_than_equal", "less_than"):
        return f"Terlalu besar: maksimal {ctx.get('le', ctx.get('lt'))}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"Terlalu kecil: minimal {ctx.get('ge', ctx.get('gt'))}"
    if kind == "string_too_long":
        return f"Terlalu panjang: maksimal {ctx.get('max_length')} karakter"
    return _PYDANTIC_MESSAGES.get(kind, "Nilai tidak valid")


def validation_errors(exc: RequestValidationError) -> dict[str, str]:
    """FastAPI's validation errors as {field: Indonesian reason}; the input is never echoed."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path") else loc
        name = safe_key(".".join(where) or "body")
        errors.setdefault(name, _validation_message(error))
    return errors


def _declare_errors(app: FastAPI) -> None:
    """The OpenAPI document says what every /api operation can answer, so that a client (and
    the Schemathesis fuzz test) can check conformance: validation errors have the shape the
    handler below gives them (ErrorOut, not FastAPI's list), and operations that declare no
    refusals of their own (the public portal's) get a 4XX entry: its body says why."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        error_ref = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                invalid = responses.get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": error_ref}}
                is_api = path.startswith("/api/") or path.endswith(".json")
                if is_api and not any(code.startswith("4") for code in responses if code != "422"):
                    responses["4XX"] = {"description": "Refused; the JSON body says why"}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorOut", ErrorOut.model_json_schema())
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _declare_errors(app)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(errors)
        return SafeJSONResponse({"detail": f"Isian tidak valid: {fields}.", "errors": errors}, 422)

    @app.exception_handler(WrongPassphrase)
    async def _wrong_passphrase(_request: Request, exc: WrongPassphrase) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc), "errors": {"passphrase": str(exc)}}
        if isinstance(exc, CountedWrongPassphrase):
            body.update(tries_left=exc.tries_left, retry_after=exc.retry_after)
        return JSONResponse(body, http_status(exc))

    @app.exception_handler(SignerLocked)
    async def _signer_locked(_request: Request, exc: SignerLocked) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "locked": True, "tries_left": 0}, http_status(exc))

    @app.exception_handler(SignTooSoon)
    async def _sign_too_soon(_request: Request, exc: SignTooSoon) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "retry_after": exc.retry_after, "tries_left": exc.tries_left},
            http_status(exc),
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(SuratDesaError)
    async def _engine_error(_request: Request, exc: SuratDesaError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, InvalidInput) and exc.errors:
            body["errors"] = exc.errors
        return SafeJSONResponse(body, http_status(exc))
