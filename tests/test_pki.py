"""The regency PKI: idempotent creation, extensions, signer bundles."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.trust import pki
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
    root = pki.root_paths(pki.default_root_dir(keys))
    files = [paths.root_cert, root.cert, root.key, paths.issuing_cert, paths.issuing_key]
    files += [paths.tsa_cert, paths.tsa_key, paths.seal_key]
    before = {p: p.read_bytes() for p in files}
    pki.init_pki(keys)
    assert {p: p.read_bytes() for p in files} == before
    for key in (root.key, paths.issuing_key, paths.tsa_key, paths.seal_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert root.root_dir.parent == keys.parent and root.root_dir.name == f"{keys.name}-root"
    assert paths.root_cert.read_bytes() == root.cert.read_bytes()
    assert not (keys / root.key.name).exists()


def test_concurrent_init_makes_one_pki(tmp_path):
    """Two app processes starting at once on an empty folder: one root, one issuing CA."""
    import multiprocessing

    keys = tmp_path / "keys"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=pki.init_pki, args=(keys,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    pki.load_issuing_ca(keys).verify_directly_issued_by(pki.load_root_ca(keys))
    tsa, _ = pki.load_tsa(keys)
    tsa.verify_directly_issued_by(pki.load_issuing_ca(keys))
    assert not pki.pki_paths(keys).issuing_csr.exists()


def test_root_folder_must_be_outside_the_server_folder(tmp_path):
    for bad in (tmp_path, tmp_path / "root"):
        with pytest.raises(pki.PkiError, match="root folder"):
            pki.init_pki(tmp_path, root_dir=bad)
    assert not pki.pki_paths(tmp_path).issuing_key.exists()  # refused before any key


def test_root_key_left_by_an_older_version_is_moved_out(tmp_path):
    keys, root_dir = tmp_path / "dev", tmp_path / "dev-root"
    pki.init_pki(keys)
    root = pki.root_paths(root_dir)
    # the layout before the root went offline: root key beside the server keys, no dev-root
    root.key.rename(keys / "root-ca.key.pem")
    root.cert.unlink()
    (root_dir / ".pki.lock").unlink()
    root_dir.rmdir()
    assert pki.has_legacy_root_key(keys)
    pki.init_pki(keys)
    assert not pki.has_legacy_root_key(keys)
    assert stat.S_IMODE(root.key.stat().st_mode) == 0o600
    assert root.cert.read_bytes() == pki.pki_paths(keys).root_cert.read_bytes()
    # and the moved key still signs for this root: a new issuing CA verifies under it
    csr = pki.load_csr(
        x509.CertificateSigningRequestBuilder()
        .subject_name(pki.load_issuing_ca(keys).subject)
        .sign(pki.new_key(), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    pki.sign_issuing_csr(root_dir, csr).verify_directly_issued_by(pki.load_root_ca(keys))


def test_seal_key_is_made_without_the_root(tmp_path):
    keys = tmp_path / "keys"
    pki.init_pki(keys)
    pki.pki_paths(keys).seal_key.unlink()
    root = pki.root_paths(pki.default_root_dir(keys))
    root.key.rename(tmp_path / "elsewhere.pem")  # the root went offline
    assert pki.load_seal_key(keys).curve.name == "secp256r1"
    pki.init_pki(keys)  # an installed server folder needs no root key either
    assert not root.key.exists()


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
