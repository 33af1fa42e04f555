"""The JSON Schema of a workflow YAML, for editors and the `suratdesa workflows schema` command."""

from __future__ import annotations

from typing import Any

from engine.requests.workflows.checks import _FACT_FROM
from engine.requests.workflows.spec import (
    _NAME,
    _REQUIRED_KEYS,
    _SLUG,
    ACTIONS,
    DELEGATE_MARKS,
    DELEGATE_ROLES,
    EFFECT_KINDS,
    FIELD_TYPES,
    PUBLIC_FACT_LABEL_MAX,
    PUBLIC_FACTS_MAX,
    ROLES,
    TERMINAL_STATES,
)

# --------------------------------------------------------------------------- JSON Schema


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a workflow file, for editors. The loader checks more
    (graph reachability, template existence, number format placeholders)."""
    name, text = _name(), _text()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://suratdesa.local/schema/workflow.json",
        "title": "Surat Desa workflow",
        "type": "object",
        "additionalProperties": False,
        "required": list(_REQUIRED_KEYS),
        "properties": {
            "id": {"type": "string", "pattern": _SLUG.pattern},
            "version": {"type": "integer", "minimum": 1},
            "title": text,
            "description": {"type": "string"},
            "classification": text,
            "number_format": {"type": "string", "pattern": r"\{seq(:0\d)?\}"},
            "subjects": _subjects_schema(),
            "fields": _fields_schema(),
            "template": text,
            "initial": name,
            "steps": _steps_schema(),
            "public_facts": _public_facts_schema(),
            "effects": _effects_schema(),
            "citizen_requestable": {
                "type": "boolean",
                "default": False,
                "description": "Residents may ask for this letter online; their request "
                "enters the initial (operator's) step.",
            },
            "sample": {
                "type": "object",
                "description": "Example field values (field name -> value) for the letter "
                "type editor's DRAFT preview.",
            },
        },
    }


def _name() -> dict[str, Any]:
    return {"type": "string", "pattern": _NAME.pattern}


def _text() -> dict[str, Any]:
    return {"type": "string", "minLength": 1}


def _subjects_schema() -> dict[str, Any]:
    name, text = _name(), _text()
    return {
        "type": "object",
        "minProperties": 1,
        "propertyNames": name,
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "required": ["label"],
            "properties": {
                "label": text,
                "required": {"type": "boolean"},
                "alive": {"type": ["boolean", "null"]},
                "sex": {"enum": ["L", "P", None]},
            },
        },
    }


def _fields_schema() -> dict[str, Any]:
    name, text = _name(), _text()
    return {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "label", "type"],
            "properties": {
                "name": name,
                "label": text,
                "type": {"enum": list(FIELD_TYPES)},
                "required": {"type": "boolean"},
                "options": {"type": "array", "minItems": 1, "items": text},
                "max_length": {"type": "integer", "minimum": 1},
                "min": {"type": "number"},
                "max": {"type": "number"},
                "whole": {"type": "boolean"},
                "not_future": {"type": "boolean"},
            },
            "if": {"properties": {"type": {"const": "choice"}}},
            "then": {"required": ["options"]},
        },
    }


def _steps_schema() -> dict[str, Any]:
    name, text, target = _name(), _text(), _name()
    return {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {**name, "not": {"enum": sorted(TERMINAL_STATES)}},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "required": ["role", "actions"],
            "properties": {
                "role": {"enum": sorted(ROLES)},
                "label": text,
                "signers": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"enum": list(DELEGATE_ROLES)},
                    "additionalProperties": {"enum": list(DELEGATE_MARKS)},
                },
                "actions": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"enum": sorted(ACTIONS)},
                    "additionalProperties": target,
                    "properties": {
                        "sign": {"const": "issued"},
                        "reject": {"const": "rejected"},
                    },
                },
            },
        },
    }


def _public_facts_schema() -> dict[str, Any]:
    text = _text()
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": PUBLIC_FACTS_MAX,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["label", "from"],
            "properties": {
                "label": {**text, "maxLength": PUBLIC_FACT_LABEL_MAX},
                "from": {"type": "string", "pattern": _FACT_FROM.pattern},
            },
        },
    }


def _effects_schema() -> dict[str, Any]:
    name = _name()
    return {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "propertyNames": {"enum": sorted(EFFECT_KINDS)},
                "additionalProperties": name,
            },
        },
    }
