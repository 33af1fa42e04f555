"""Issue 12: tools we did not write agree about a letter issued here (PAdES B-LTA, PDF/A-2b):
poppler's ``pdfsig`` with an NSS database that trusts only our root, ``openssl cms -verify`` on
the certification signature's CMS over the bytes it signs, and ``openssl ts -verify`` on both
RFC 3161 tokens (the one inside the signature, over the signature value; the document
timestamp's, over the bytes it covers). ``pyhanko sign validate --force-revinfo`` against our
OCSP responder and CRLs is in tests/test_ocsp.py; Apache Preflight (PDF/A) in tests/test_pdfa.py.
"""

from __future__ import annotations

import hashlib
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader

from engine.trust import pki
from suratdesa.web import create_app
from tests.conftest import require_tool
from tests.test_tamper import issue_letter


@pytest.fixture
def letter(settings, logins, passphrase) -> bytes:
    return issue_letter(TestClient(create_app(settings)), logins, passphrase)["pdf"]


def _pem(path: Path, *certs) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _signatures(pdf: bytes):
    """(kind, CMS DER, the bytes its byte range covers) of each signature, in order."""
    out = []
    for sig in PdfFileReader(BytesIO(pdf)).embedded_signatures:
        a, b, c, d = (int(x) for x in sig.byte_range)
        covered = pdf[a : a + b] + pdf[c : c + d]
        der = cms.ContentInfo({"content_type": "signed_data", "content": sig.signed_data}).dump()
        out.append((sig.sig_object_type, der, covered))
    return out


def test_pdfsig_with_an_nss_database_trusting_our_root(settings, letter, tmp_path):
    pdfsig, certutil = require_tool("pdfsig"), require_tool("certutil")
    nss = tmp_path / "nss"
    nss.mkdir()
    root = _pem(tmp_path / "root.pem", pki.load_root_ca(settings.keys_dir))
    made = _run(certutil, "-N", "-d", f"sql:{nss}", "--empty-password")
    assert made.returncode == 0, made.stderr
    added = _run(certutil, "-A", "-d", f"sql:{nss}", "-n", "Root Sukoharjo", "-t", "C,C,C", "-i",
                 str(root))  # fmt: skip
    assert added.returncode == 0, added.stderr
    path = tmp_path / "surat.pdf"
    path.write_bytes(letter)
    done = _run(pdfsig, "-nssdir", f"sql:{nss}", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.split("Signature #2")[0]
    assert "Signature Validation: Signature is Valid." in first, done.stdout
    assert "Certificate Validation: Certificate is Trusted." in first, done.stdout
    assert "Signature #2" in done.stdout  # the document timestamp, listed after it

    # Without our root in the database the same signature is valid but NOT trusted: the
    # trust above comes from the root, not from anything the file carries.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(certutil, "-N", "-d", f"sql:{empty}", "--empty-password").returncode == 0
    untrusted = _run(pdfsig, "-nssdir", f"sql:{empty}", str(path)).stdout.split("Signature #2")[0]
    assert "Signature is Valid." in untrusted
    assert "Certificate is Trusted." not in untrusted, untrusted


def test_openssl_cms_verifies_the_certification_signature(settings, letter, tmp_path):
    openssl = require_tool("openssl")
    keys = settings.keys_dir
    root = _pem(tmp_path / "root.pem", pki.load_root_ca(keys))
    (kind, der, covered), *_ = _signatures(letter)
    assert kind == "/Sig"
    (tmp_path / "sig.der").write_bytes(der)
    (tmp_path / "content.bin").write_bytes(covered)
    command = (openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in",
               str(tmp_path / "sig.der"), "-content", str(tmp_path / "content.bin"), "-CAfile",
               str(root), "-purpose", "any", "-out", "/dev/null")  # fmt: skip
    done = _run(*command)
    assert done.returncode == 0 and "Verification successful" in done.stderr, done.stderr
    # One byte of the signed content changed: openssl refuses it.
    (tmp_path / "content.bin").write_bytes(covered[:-1] + bytes([covered[-1] ^ 1]))
    refused = _run(*command)
    assert refused.returncode != 0 and "Verification successful" not in refused.stderr


def test_openssl_ts_verifies_both_timestamps(settings, letter, tmp_path):
    openssl = require_tool("openssl")
    keys = settings.keys_dir
    root = _pem(tmp_path / "root.pem", pki.load_root_ca(keys))
    chain = _pem(tmp_path / "chain.pem", pki.load_issuing_ca(keys), pki.load_tsa_cert(keys))
    (kind, der, _), (doc_kind, doc_der, doc_covered) = _signatures(letter)
    assert (kind, doc_kind) == ("/Sig", "/DocTimeStamp")

    def verify(token: bytes, name: str, *what: str) -> subprocess.CompletedProcess:
        (tmp_path / name).write_bytes(token)
        return _run(openssl, "ts", "-verify", "-token_in", "-in", str(tmp_path / name), *what,
                    "-CAfile", str(root), "-untrusted", str(chain))  # fmt: skip

    # The signature's timestamp token covers the signature value (its unsigned attribute).
    signer_info = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    (token,) = (
        a["values"][0]
        for a in signer_info["unsigned_attrs"]
        if a["type"].native == "signature_time_stamp_token"
    )
    digest = hashlib.sha256(signer_info["signature"].native).hexdigest()
    done = verify(token.dump(), "sig_token.der", "-digest", digest)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
    wrong = verify(token.dump(), "sig_token.der", "-digest", hashlib.sha256(b"x").hexdigest())
    assert "Verification: OK" not in wrong.stdout

    # The document timestamp's token covers the bytes of its own byte range.
    (tmp_path / "doc.bin").write_bytes(doc_covered)
    done = verify(doc_der, "doc_token.der", "-data", str(tmp_path / "doc.bin"))
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
