"""signer certificates: every signer certificate ever issued, append-only, published at
/pki/signers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00

One row per certificate, written when the key is issued (engine.people.signers.record_issued) and
never updated or deleted (database triggers refuse both, and TRUNCATE on PostgreSQL).
Revocation lives in `revoked_certificates` and is joined. The backfill records the current
certificate of every account that holds one; certificates replaced before this migration left no
trace in the database and cannot be listed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from cryptography import x509
from cryptography.hazmat.primitives import hashes

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = "signer_certificates is append-only"


def upgrade() -> None:
    table = op.create_table(
        "signer_certificates",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("village_code", sa.String(13), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_storage", sa.String(10), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["village_code"], ["villages.code"]),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_index(
        op.f("ix_signer_certificates_user_id"), "signer_certificates", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_signer_certificates_village_code"),
        "signer_certificates",
        ["village_code"],
        unique=False,
    )
    _backfill(table)
    _make_append_only()


def _backfill(table: sa.Table) -> None:
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("role", sa.String),
        sa.column("full_name", sa.String),
        sa.column("village_code", sa.String),
        sa.column("signer_cert_pem", sa.Text),
        sa.column("signer_hsm_label", sa.String),
    )
    rows = []
    for user in op.get_bind().execute(
        sa.select(users).where(
            users.c.signer_cert_pem.is_not(None), users.c.village_code.is_not(None)
        )
    ):
        cert = x509.load_pem_x509_certificate(user.signer_cert_pem.encode())
        not_before = cert.not_valid_before_utc
        rows.append(
            {
                "serial": format(cert.serial_number, "x"),
                "user_id": user.id,
                "full_name": _attr(cert, x509.NameOID.COMMON_NAME) or user.full_name,
                "role": user.role,
                "village_code": user.village_code,
                "title": _attr(cert, x509.NameOID.TITLE),
                "not_before": not_before,
                "not_after": cert.not_valid_after_utc,
                # Not recorded before this table existed: the certificate's own start is the
                # closest known time (certificates are back-dated by minutes at most).
                "issued_at": not_before,
                "key_storage": "hsm" if user.signer_hsm_label else "pkcs12",
                "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "cert_pem": user.signer_cert_pem,
            }
        )
    if rows:
        op.bulk_insert(table, rows)


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _make_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION signer_certificates_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER signer_certificates_no_change BEFORE UPDATE OR DELETE "
            "ON signer_certificates FOR EACH ROW "
            "EXECUTE FUNCTION signer_certificates_append_only()"
        )
        op.execute(
            "CREATE TRIGGER signer_certificates_no_truncate BEFORE TRUNCATE "
            "ON signer_certificates FOR EACH STATEMENT "
            "EXECUTE FUNCTION signer_certificates_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER signer_certificates_no_{verb.lower()} BEFORE {verb} "
                f"ON signer_certificates BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS signer_certificates_no_truncate ON signer_certificates")
        op.execute("DROP TRIGGER IF EXISTS signer_certificates_no_change ON signer_certificates")
        op.execute("DROP FUNCTION IF EXISTS signer_certificates_append_only()")
    op.drop_index(op.f("ix_signer_certificates_village_code"), table_name="signer_certificates")
    op.drop_index(op.f("ix_signer_certificates_user_id"), table_name="signer_certificates")
    op.drop_table("signer_certificates")
