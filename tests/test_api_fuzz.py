"""Property-based fuzzing of the whole JSON API from its own OpenAPI document (Schemathesis),
as an operator, as a village head and with no token: no answer is a 5xx, every answer's status
code, content type and body match what the document declares.

Bounded for CI: a fixed number of examples per operation, no deadline (the machine may be
busy: slowness is not what this test is about), derandomized so that every run tries the same
inputs (a failure reproduces), the Hypothesis database off (no state between runs)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from suratdesa.web import create_app
from tests.letters import GROGOL

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_app(settings):
    return create_app(settings)


@pytest.fixture
def existing_request(fuzz_app, logins) -> int:
    """One real request in Grogol, so that some generated ids hit something."""
    token = next(row[3] for row in logins.rows if row[0] == "operator.grogol")
    r = TestClient(fuzz_app).post(
        "/api/requests",
        json={
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][0]},
            "data": {"keperluan": "Persyaratan melamar pekerjaan"},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def auth_headers(logins, who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    token = next(row[3] for row in logins.rows if row[0] == who)
    return {"Authorization": f"Bearer {token}"}


BOUNDED = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "who", ["operator.grogol", "head.grogol", None], ids=["operator", "head", "no-token"]
)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_match_the_openapi_document(fuzz_app, logins, existing_request, who, mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    headers = auth_headers(logins, who)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            request_id = (case.path_parameters or {}).get("request_id")
            if isinstance(request_id, int) and request_id % 3 == 0:
                case.path_parameters["request_id"] = existing_request  # one that exists
            case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): only positive cases exist.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # every operation is tried; all failures are reported
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
