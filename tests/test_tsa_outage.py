"""Issue 12, "TSA unreachable": with an external timestamp service (SURATDESA_TSA_URL) that does
not answer, no letter is issued with a time of our own making: signing fails cleanly and says
so (503), nothing is stored, no number is used, and the same request signs once the TSA is
back. The TSA here is a real RFC 3161 service over HTTP on 127.0.0.1 (our development TSA's key
behind http.server), stopped and started by the test."""

from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto import tsp
from fastapi.testclient import TestClient

from engine.aio import run_sync
from engine.trust.registry import verify_letter
from engine.trust.signing import make_timestamper
from engine.trust.verification import VALID
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff
from tests.notify_peers import wait_for
from tests.test_issuance import sequences


class HttpTsa:
    """An RFC 3161 TSA over HTTP that can be taken down and brought back on the same port."""

    def __init__(self, keys_dir) -> None:
        self.stamper = make_timestamper(None, keys_dir)
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.answered = 0

    def start(self) -> None:
        stamper, outer = self.stamper, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = tsp.TimeStampReq.load(body)
                response = run_sync(stamper.async_request_tsa_response(request))
                data = response.dump()
                outer.answered += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"


@pytest.fixture
def tsa(settings):
    service = HttpTsa(settings.keys_dir)
    service.start()
    yield service
    service.stop()


def test_no_letter_without_the_tsa_and_the_same_request_signs_when_it_is_back(
    settings, services, logins, passphrase, tsa
):
    remote = replace(settings, tsa_url=tsa.url)
    staff = Staff(TestClient(create_app(remote)), logins)
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][0]},
            "data": {"keperluan": "Persyaratan melamar pekerjaan"},
        },
    )
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("grogol", r.json())

    tsa.stop()  # the service goes away (connection refused on its port)
    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 503, r.text
    assert "cap waktu" in r.json()["detail"] and "belum diterbitkan" in r.json()["detail"]
    assert sequences(services, GROGOL) == []  # no letter, no number used
    assert staff.get("operator.grogol", f"/api/requests/{request['id']}").json()["state"] == (
        "signing"
    )

    tsa.start()  # back, on the same port
    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 200, r.text
    assert tsa.answered >= 2  # the signature's timestamp and the archival one came from it
    pdf = staff.get("operator.grogol", r.json()["letter"]["pdf_url"]).content
    assert r.json()["letter"]["number"].split("/")[1] == "001"
    assert verify_letter(pdf, services.factory, settings.keys_dir).status == VALID


def test_a_batch_waits_for_the_tsa_and_resumes_exactly_the_rest(settings, logins, passphrase, tsa):
    """The TSA stops answering after the first group of a 20-letter batch: that group is
    stored, the other letters stay pending (not failed), the batch shows as interrupted, and
    once the TSA answers again the passphrase issues exactly the rest, numbers gapless."""
    from engine.jobs import batch_runs
    from engine.services import Services
    from tests.test_issuance import actor, ready_to_sign
    from tests.test_jobs_batches import _check_consistent, _items

    services = Services.from_settings(replace(settings, tsa_url=tsa.url))
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 20)
    head = actor(services, "head.grogol")
    owner = batch_runs.new_owner("test")
    batch_id = batch_runs.start(services.issuer, head, pairs, owner, lease_seconds=1)
    signer = services.issuer.unlock(head, passphrase)
    services.issuer.before_store = lambda: tsa.stop()  # after the first group is made
    batch_runs.run(services.issuer, head, batch_id, signer, owner, lease_seconds=1)
    services.issuer.before_store = None
    assert _check_consistent(services, batch_id, pairs) == 8  # the first group only
    assert {i.status for i in _items(services, batch_id)} == {"done", "pending"}
    # The lease (1 s) runs out: the batch shows as interrupted.
    wait_for(
        lambda: batch_runs.state(services.issuer, head, batch_id, lease_seconds=1).interrupted,
        timeout=30,
        what="the batch interrupted",
    )
    assert batch_runs.state(services.issuer, head, batch_id, lease_seconds=1).pending == 12

    tsa.start()
    signer = batch_runs.resume(services.issuer, head, batch_id, passphrase, "again")
    batch_runs.run(services.issuer, head, batch_id, signer, "again")
    assert _check_consistent(services, batch_id, pairs) == 20
