"""PAdES certification signing with real pyHanko, checked by pyHanko and poppler's pdfsig."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.sign.fields import MDPPerm

from engine.trust import pki, signing
from tests.conftest import require_tool
from tests.pdf_fixtures import (
    PASSPHRASE,
    assert_certified_by,
    issue_test_signer,
    one_page_pdf,
    validate_letter,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d)
    return d


@pytest.fixture(scope="module")
def bundle(keys):
    return issue_test_signer(keys)


@pytest.fixture(scope="module")
def signer(keys, bundle):
    return signing.load_signer(bundle.p12, PASSPHRASE, keys_dir=keys)


@pytest.fixture(scope="module")
def timestamper(keys):
    return signing.make_timestamper(None, keys)


@pytest.fixture(scope="module")
def signed(signer, timestamper):
    return signing.sign_letter(
        one_page_pdf(), signer, timestamper, reason="Surat keterangan", location="Desa Grogol"
    )


def test_wrong_passphrase(keys, bundle):
    with pytest.raises(signing.WrongPassphrase, match="Kata sandi penandatangan salah"):
        signing.load_signer(bundle.p12, "bukan-ini", keys_dir=keys)


def test_expired_certificate_is_refused(keys):
    issuing, issuing_key = pki.load_issuing_ca_key(keys)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lama")]))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=800))
        .not_valid_after(now - timedelta(days=70))
        .sign(issuing_key, hashes.SHA256())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        b"lama", key, cert, None, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(signing.SignerCertificateExpired, match="kedaluwarsa"):
        signing.load_signer(p12, "pw", keys_dir=keys)


def test_certificate_of_another_ca_is_refused(keys, tmp_path):
    pki.init_pki(tmp_path)
    foreign = issue_test_signer(tmp_path)
    with pytest.raises(signing.SigningError, match="tidak diterbitkan"):
        signing.load_signer(foreign.p12, PASSPHRASE, keys_dir=keys)


def test_signed_letter_validates_in_pyhanko(signed, keys):
    assert_certified_by(signed, keys, "Budi Santoso")


def test_pdfsig_accepts_the_signature(signed, tmp_path):
    pdfsig = require_tool("pdfsig")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    out = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, timeout=30)
    assert "Signature is Valid." in out.stdout, out.stdout + out.stderr
    assert "Total document signed" in out.stdout
    assert "ETSI.CAdES.detached" in out.stdout


def test_batch_with_one_loaded_signer(signer, timestamper, keys):
    letters = [
        signing.sign_letter(
            one_page_pdf(f"Surat {i}"), signer, timestamper, reason="r", location="l"
        )
        for i in range(3)
    ]
    assert len(set(letters)) == 3
    for pdf in letters:
        assert validate_letter(pdf, keys)[2].bottom_line


def test_undersized_reservation_falls_back(signer, timestamper, keys):
    signer._reserve[timestamper] = 64  # far too small for any CMS
    pdf = signing.sign_letter(one_page_pdf(), signer, timestamper, reason="r", location="l")
    assert validate_letter(pdf, keys)[2].bottom_line
    signer._reserve.pop(timestamper, None)


def test_baseline_produces_the_same_profile(keys, bundle):
    pdf = signing.baseline_sign(one_page_pdf(), bundle.p12, PASSPHRASE, keys_dir=keys)
    reader, emb, status = validate_letter(pdf, keys)
    assert status.bottom_line
    assert emb.docmdp_level == MDPPerm.NO_CHANGES
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
