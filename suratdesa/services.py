"""The engine objects one app process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from engine.catalog import WorkflowCatalog
from engine.config import Settings, get_settings
from engine.db import session_factory
from engine.issuance import Issuer


@dataclass
class Services:
    settings: Settings
    factory: sessionmaker[Session]
    catalog: WorkflowCatalog
    issuer: Issuer

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Services:
        settings = settings or get_settings()
        factory = session_factory(settings.database_url)
        catalog = WorkflowCatalog(settings.workflows_dir)
        return cls(settings, factory, catalog, Issuer(factory, catalog, settings))
