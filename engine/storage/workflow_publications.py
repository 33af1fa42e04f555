"""The letter type versions put in force from the browser (a table of ``engine.storage.models``'
metadata, in a module of its own; migration 0020)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, UTCDateTime


class WorkflowPublication(Base):
    """A letter type version put in force by the regency admin from the browser
    (engine.requests.letter_type_editor): a publish, or a rollback to an earlier version. The
    latest row of a type is its version in force; without any row, the file on disk is.
    ``seq`` counts the rows of one type (1, 2, ...): two admins publishing at once cannot both
    write the same next row."""

    __tablename__ = "workflow_publications"
    __table_args__ = (UniqueConstraint("workflow_id", "seq", name="uq_workflow_publication_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(
        ForeignKey("workflow_snapshots.sha256", name="fk_workflow_publications_snapshot")
    )
    kind: Mapped[str] = mapped_column(String(20))  # "publish" | "rollback"
    note: Mapped[str | None] = mapped_column(Text)  # the admin's note or rollback reason
    published_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_workflow_publications_user")
    )
    published_by: Mapped[str] = mapped_column(String(120))  # name as shown at the time
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
