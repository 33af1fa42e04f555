"""Benchmark: what one OCSP answer costs in the engine (not a timed test).

    .venv/bin/python bench/ocsp.py [--requests 2000]

Makes a throw-away regency PKI in a temp folder and asks the responder
(engine.trust.pki.ocsp.answer) about one certificate, with the status read from a dict (the
portal reads it with one primary-key query per request, not measured here):
  - cached: the same serial again within a minute, status unchanged (the common case);
  - fresh: a request with a nonce, so each answer is signed (RSA 3072 with the issuing CA key);
  - after a revocation: the first answer is signed again, then cached.
Prints the median and p95 per answer in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402

from engine.trust import pki  # noqa: E402
from engine.trust.pki.ocsp import CertStatus, answer, clear_cache  # noqa: E402


def _timed(count: int, call) -> list[float]:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _report(name: str, times: list[float]) -> None:
    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 20 else max(times)
    print(f"{name:28s} median {statistics.median(times):7.3f} ms   p95 {p95:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        pki.init_pki(keys, root_dir=Path(tmp) / "root", public_url="http://127.0.0.1:8000")
        bundle = pki.issue_signer(
            keys, username="bench", full_name="Bench", title="Kepala Desa",
            village="Desa Bench", passphrase="bench-passphrase",
        )  # fmt: skip
        cert = x509.load_pem_x509_certificate(bundle.cert_pem)
        issuer = pki.load_issuing_ca(keys)

        def request(nonce: bytes | None) -> bytes:
            b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
            if nonce:
                b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
            return b.build().public_bytes(serialization.Encoding.DER)

        plain = request(None)
        status = {"now": CertStatus(issued=True)}
        clear_cache()
        answer(keys, plain, lambda s: status["now"])  # warm: key loaded once per process
        _report("cached (same serial)", _timed(args.requests, lambda: answer(
            keys, plain, lambda s: status["now"])))  # fmt: skip
        fresh = max(50, args.requests // 20)
        _report("fresh (nonce, signed)", _timed(fresh, lambda: answer(
            keys, request(os.urandom(16)), lambda s: status["now"])))  # fmt: skip
        status["now"] = CertStatus(True, datetime.now(UTC), x509.ReasonFlags.key_compromise)
        t0 = time.perf_counter()
        answer(keys, plain, lambda s: status["now"])
        print(f"{'first after revocation':28s} {(time.perf_counter() - t0) * 1000:7.3f} ms")


if __name__ == "__main__":
    main()
