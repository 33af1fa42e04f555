"""The shape of the code, read from its source with `ast` (nothing under test is imported):
the engine knows no web framework and no face, faces do not import each other, only the
assembly package imports faces; modules and functions stay small; faces do not write to the
database themselves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACES = ("staff_app", "verify_portal", "api", "citizen_app")
ASSEMBLY = "suratdesa"
# Jinja2 is allowed in the engine: letter templates are Jinja2 (engine.letters.render), which
# is rendering a document, not serving HTTP.
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "httpx", "multipart", "python_multipart")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def python_files(*packages: str) -> list[Path]:
    files = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                files.append(path)
    return files


def _parse_all() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(), str(path))
        for package in ("engine", *FACES, ASSEMBLY)
        for path in python_files(package)
    }


def tree(path: Path) -> ast.Module:
    return TREES[path] if path in TREES else ast.parse(path.read_text(), str(path))


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def top(module: str) -> str:
    return module.split(".", 1)[0]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_engine_imports_no_web_framework_and_no_face():
    wrong = [
        f"{name(path)} imports {module}"
        for path in python_files("engine")
        for module in imported_modules(path)
        if top(module) in (*WEB_FRAMEWORKS, *FACES, ASSEMBLY)
    ]
    assert wrong == []


def test_no_face_imports_another_face_or_the_assembly():
    wrong = [
        f"{name(path)} imports {module}"
        for face in FACES
        for path in python_files(face)
        for module in imported_modules(path)
        if top(module) in (*FACES, ASSEMBLY) and top(module) != face
    ]
    assert wrong == []


def test_only_the_assembly_and_tests_import_faces():
    others = [p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    packages = [p.name for p in others if p.name not in (*FACES, ASSEMBLY, "tests")]
    assert "engine" in packages
    wrong = [
        f"{name(path)} imports {module}"
        for path in python_files(*packages)
        for module in imported_modules(path)
        if top(module) in FACES
    ]
    assert wrong == []


CODE = ("engine", *FACES, ASSEMBLY)
# Parsed once, at collection: on CPython 3.11, ast.parse can fail ("AST constructor recursion
# depth mismatch") when it runs after tests that changed the recursion limit (Hypothesis does).
TREES = _parse_all()


def test_no_module_is_longer_than_the_limit():
    long = {
        name(path): lines
        for path in python_files(*CODE)
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_the_limit():
    long = {}
    for path in python_files(*CODE):
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                lines = node.end_lineno - start + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name(path)}:{node.lineno} {node.name}"] = lines
    assert long == {}


# A face parses input, calls the engine and renders the answer: rows are added, changed and
# deleted by the engine, with their audit events.
DIRECT_WRITES = re.compile(
    r"\bsession\.(add|add_all|delete|merge)\(|\.execute\(\s*(update|insert|delete)\(|"
    r"\b(insert|update|delete)\([A-Z]\w*\)"
)


@pytest.mark.parametrize("face", [*FACES, ASSEMBLY])
def test_no_face_writes_to_the_database_itself(face):
    writes = [
        f"{name(path)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for path in python_files(face)
        for text in [path.read_text()]
        for match in DIRECT_WRITES.finditer(text)
    ]
    assert writes == []


def test_every_package_and_its_files_are_installed():
    """A fresh `pip install` must carry every package the app imports, with its templates and
    static files (the tests import from the source tree, so only this catches a missing one)."""
    import fnmatch
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setup["packages"]["find"]["include"]
    data = setup["package-data"]
    for package in ("engine", *FACES, ASSEMBLY):
        assert any(fnmatch.fnmatch(package, pattern) for pattern in include), package
        for folder in ("templates", "static"):
            if (ROOT / package / folder).is_dir():
                assert any(p.startswith(f"{folder}/") for p in data.get(package, [])), (
                    f"{package}/{folder} is not in [tool.setuptools.package-data]"
                )
