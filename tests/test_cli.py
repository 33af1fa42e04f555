"""The `suratdesa` command line, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    result = run("audit", "verify", env={"SURATDESA_DATABASE_URL": settings.database_url})
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout
