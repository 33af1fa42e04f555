"""The `suratdesa` command line, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import PROJECT_ROOT


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        input=stdin,
        cwd=PROJECT_ROOT,
    )


def test_workflows_check_passes_the_shipped_letters():
    result = run("workflows", "check")
    assert result.returncode == 0, result.stderr
    for wid in ("surat-keterangan-umum", "surat-keterangan-kematian", "surat-keterangan-kelahiran"):
        assert wid in result.stdout


def test_workflows_check_names_file_line_and_reason(tmp_path: Path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "x.html.j2").write_text("x")
    source = (PROJECT_ROOT / "workflows" / "surat-keterangan-umum.yaml").read_text()
    broken = source.replace("role: sekdes", "role: lurah_palsu", 1)
    assert broken != source
    bad = tmp_path / "bad.yaml"
    bad.write_text(broken.replace("templates/umum.html.j2", "templates/x.html.j2"))
    result = run("workflows", "check", str(bad))
    assert result.returncode == 1
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "lurah_palsu" in text)
    assert f"{bad}:{line}:" in result.stderr
    assert "lurah_palsu" in result.stderr


def test_workflows_schema_is_json():
    import json

    result = run("workflows", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "steps" in schema["properties"]


def test_audit_verify_on_a_database(settings):
    env = {
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_AUDIT_DIR": str(settings.audit_dir),
    }
    result = run("audit", "verify", env=env)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout


def test_new_head_gets_a_key_and_token_from_the_cli(settings, tmp_path):
    """An admin enrols a new village head: account, signing key (passphrase from stdin), token."""
    from engine.people.users import actor_for_token, get_user
    from engine.storage.db import session_factory, transaction
    from engine.trust.signing import WrongPassphrase, load_signer

    env = {
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
    }
    created = run(
        "users",
        "create",
        "head.karangtengah",
        "--name",
        "Bu Kades Contoh",
        "--role",
        "head",
        "--village",
        "33.11.01.2002",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    short = run(
        "keys", "issue-signer", "head.karangtengah", "--passphrase-stdin", env=env, stdin="pendek\n"
    )
    assert short.returncode == 1 and "minimal 8" in short.stderr
    issued = run(
        "keys",
        "issue-signer",
        "head.karangtengah",
        "--passphrase-stdin",
        env=env,
        stdin="rahasia-kades-1\n",
    )
    assert issued.returncode == 0, issued.stderr
    token = run("users", "token", "head.karangtengah", env=env)
    assert token.returncode == 0
    with transaction(session_factory(settings.database_url)) as session:
        user = get_user(session, "head.karangtengah")
        assert user.signer_p12 and user.signer_serial
        p12 = user.signer_p12
        assert actor_for_token(session, token.stdout.strip()).username == "head.karangtengah"
    assert load_signer(p12, "rahasia-kades-1", keys_dir=settings.keys_dir).common_name
    with pytest.raises(WrongPassphrase):
        load_signer(p12, "salah", keys_dir=settings.keys_dir)


def test_unknown_village_is_refused_by_users_create(settings):
    result = run(
        "users",
        "create",
        "x",
        "--name",
        "X",
        "--role",
        "operator",
        "--village",
        "33.11.99.9999",
        env={"SURATDESA_DATABASE_URL": settings.database_url},
    )
    assert result.returncode == 1
    assert "tidak dikenal" in result.stderr
