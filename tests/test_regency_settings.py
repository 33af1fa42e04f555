"""Regency settings: read with defaults, written only by the regency admin, every write
audited (a file by its fingerprint, never its bytes)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from engine import regency_settings
from engine.errors import Forbidden
from engine.people.users import Actor, get_user
from engine.storage.db import transaction
from engine.storage.models import AuditEvent


def _actor(services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(get_user(session, username))


def _events(session):
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "regency_setting_changed")
            .order_by(AuditEvent.id)
        )
    )


def test_admin_sets_a_value_and_a_file_and_both_are_audited(services):
    admin = _actor(services, "admin")
    with transaction(services.factory) as session:
        assert regency_settings.get(session, "kop.phone", "-") == "-"
        regency_settings.put(session, admin, "kop.phone", "(0271) 593068")
        regency_settings.put(session, admin, "kop.phone", "(0271) 593068")  # unchanged: no event
        regency_settings.put_blob(session, admin, "kop.emblem", b"\x89PNG fake")
    with transaction(services.factory) as session:
        assert regency_settings.get(session, "kop.phone") == "(0271) 593068"
        assert regency_settings.get_blob(session, "kop.emblem") == b"\x89PNG fake"
        phone, emblem = _events(session)
        assert phone.detail == {"key": "kop.phone", "old": None, "new": "(0271) 593068"}
        assert phone.actor == "admin"
        assert emblem.detail["new"] == {
            "sha256": hashlib.sha256(b"\x89PNG fake").hexdigest(),
            "bytes": 9,
        }


def test_village_staff_change_nothing(services):
    head = _actor(services, "head.grogol")
    with transaction(services.factory) as session:
        with pytest.raises(Forbidden):
            regency_settings.put(session, head, "kop.phone", "123")
        with pytest.raises(Forbidden):
            regency_settings.put_blob(session, head, "kop.emblem", b"x")
    with transaction(services.factory) as session:
        assert regency_settings.get(session, "kop.phone") is None
        assert _events(session) == []
