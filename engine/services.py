"""The engine objects one app process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings, get_settings
from engine.letters.issuance import Issuer
from engine.people.users import set_password_hash_threads
from engine.requests.catalog import WorkflowCatalog
from engine.storage.db import session_factory


@dataclass
class Services:
    settings: Settings
    factory: sessionmaker[Session]
    catalog: WorkflowCatalog
    issuer: Issuer

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Services:
        settings = settings or get_settings()
        set_password_hash_threads(settings.password_hash_threads)
        factory = session_factory(settings.database_url)
        catalog = WorkflowCatalog(settings.workflows_dir, factory)  # follows publications
        return cls(settings, factory, catalog, Issuer(factory, catalog, settings))
