"""The regency PKI: idempotent creation, extensions, signer bundles."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine import pki
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d)
    return d


def _ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_init_is_idempotent_and_never_overwrites(keys):
    paths = pki.pki_paths(keys)
    files = [paths.root_cert, paths.root_key, paths.issuing_cert, paths.issuing_key]
    files += [paths.tsa_cert, paths.tsa_key]
    before = {p: p.read_bytes() for p in files}
    pki.init_pki(keys)
    assert {p: p.read_bytes() for p in files} == before
    for key in (paths.root_key, paths.issuing_key, paths.tsa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_missing_half_of_a_pair_is_refused(tmp_path):
    pki.init_pki(tmp_path)
    pki.pki_paths(tmp_path).tsa_key.unlink()
    with pytest.raises(pki.PkiError):
        pki.init_pki(tmp_path)


def test_missing_tsa_is_recreated_under_the_existing_chain(tmp_path):
    paths = pki.init_pki(tmp_path)
    root_before = paths.root_cert.read_bytes()
    paths.tsa_cert.unlink()
    paths.tsa_key.unlink()
    pki.init_pki(tmp_path)
    assert paths.root_cert.read_bytes() == root_before
    tsa, _ = pki.load_tsa(tmp_path)
    tsa.verify_directly_issued_by(pki.load_issuing_ca(tmp_path))


def test_chain_and_extensions(keys):
    root = pki.load_root_ca(keys)
    issuing = pki.load_issuing_ca(keys)
    tsa, _ = pki.load_tsa(keys)

    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    tsa.verify_directly_issued_by(issuing)

    for ca in (root, issuing):
        bc = _ext(ca, x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        ku = _ext(ca, x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert _ext(issuing, x509.BasicConstraints).value.path_length == 0

    assert not _ext(tsa, x509.BasicConstraints).value.ca
    eku = _ext(tsa, x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]

    # SKI/AKI link every certificate to its issuer
    for child, parent in ((issuing, root), (tsa, issuing)):
        aki = _ext(child, x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == _ext(parent, x509.SubjectKeyIdentifier).value.digest

    for cert in (root, issuing, tsa):
        assert cert.public_key().key_size == 3072
        org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        assert org == "Pemerintah Kabupaten Sukoharjo"
        assert "bsre" not in cert.subject.rfc4514_string().lower()


def test_issue_signer_bundle(keys):
    bundle = issue_test_signer(keys)
    key, cert, chain = pkcs12.load_key_and_certificates(bundle.p12, PASSPHRASE.encode())
    assert key is not None and cert is not None
    assert cert.serial_number == bundle.serial
    assert cert == x509.load_pem_x509_certificate(bundle.cert_pem)
    cert.verify_directly_issued_by(pki.load_issuing_ca(keys))
    assert {c.subject for c in chain} == {
        pki.load_issuing_ca(keys).subject,
        pki.load_root_ca(keys).subject,
    }

    def attr(oid):
        return cert.subject.get_attributes_for_oid(oid)[0].value

    assert attr(NameOID.COMMON_NAME) == "Budi Santoso"
    assert attr(NameOID.TITLE) == "Kepala Desa"
    assert attr(NameOID.ORGANIZATIONAL_UNIT_NAME) == "Desa Grogol"
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign
    assert not _ext(cert, x509.BasicConstraints).value.ca
    expected = datetime.now(UTC) + timedelta(days=730)
    assert abs(bundle.not_after - expected) < timedelta(hours=1)

    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.p12, b"salah")


def test_extra_trust_roots(keys, tmp_path):
    other = tmp_path / "other"
    pki.init_pki(other, regency="Kabupaten Klaten")
    (keys / pki.EXTRA_ROOTS_DIR).mkdir()
    try:
        (keys / pki.EXTRA_ROOTS_DIR / "klaten.pem").write_bytes(
            pki.pki_paths(other).root_cert.read_bytes()
        )
        roots = pki.load_trust_roots(keys)
        assert [r.subject for r in roots] == [
            pki.load_root_ca(keys).subject,
            pki.load_root_ca(other).subject,
        ]
    finally:
        (keys / pki.EXTRA_ROOTS_DIR / "klaten.pem").unlink()
        (keys / pki.EXTRA_ROOTS_DIR).rmdir()
