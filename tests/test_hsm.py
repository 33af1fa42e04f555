"""Signer keys on a PKCS#11 token (engine.trust.hsm), against a throw-away SoftHSM2 token."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive, SessionHandleInvalid
from pyhanko.sign.pkcs11 import PKCS11Signer

from engine.trust import hsm, pki, signing
from tests.pdf_fixtures import assert_certified_by, one_page_pdf
from tests.softhsm import MODULE, PIN, softhsm_token

TOKEN = "suratdesa-test"
KEY = "kades.grogol"
PUBLIC = "https://surat.sukoharjokab.go.id"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory):
    with softhsm_token(tmp_path_factory.mktemp("softhsm"), TOKEN):
        yield TOKEN


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d, public_url=PUBLIC)  # certificates point at the CRL and OCSP under PUBLIC
    return d


@pytest.fixture(scope="module")
def enrolled(token, keys):
    return hsm.enroll_hsm_signer(
        MODULE,
        token,
        KEY,
        PIN,
        keys_dir=keys,
        username="kades.grogol",
        full_name="Budi Santoso",
        title="Kepala Desa",
        village="Desa Grogol",
    )


@pytest.fixture(scope="module")
def timestamper(keys):
    return signing.make_timestamper(None, keys)


def test_certificate_is_issued_by_the_regency_ca(enrolled, keys):
    enrolled.verify_directly_issued_by(pki.load_issuing_ca(keys))
    assert enrolled.subject.rfc4514_string().startswith("CN=Budi Santoso,")
    assert enrolled.public_key().key_size == pki.KEY_BITS


def _pointers(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    """(CRL distribution points, OCSP responders, CA issuer URLs) the certificate names."""
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return (
        [name.value for point in cdp for name in point.full_name],
        [d.access_location.value for d in aia
         if d.access_method == AuthorityInformationAccessOID.OCSP],
        [d.access_location.value for d in aia
         if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS],
    )  # fmt: skip


def test_token_certificate_points_at_the_crl_and_ocsp_like_a_pkcs12_one(enrolled, keys):
    # A relying party (Acrobat, pdfsig, a court's expert) checks a token signer's revocation
    # where it checks a software signer's: the same CRL and OCSP addresses.
    assert _pointers(enrolled) == (
        [f"{PUBLIC}/pki/issuing-ca.crl"],
        [f"{PUBLIC}/pki/ocsp"],
        [f"{PUBLIC}/pki/issuing-ca.cer"],
    )
    software = x509.load_pem_x509_certificate(
        pki.issue_signer(
            keys,
            username="sekdes.grogol",
            full_name="Sri Lestari",
            title="Sekretaris Desa",
            village="Desa Grogol",
            passphrase="kata-sandi-panjang",
        ).cert_pem
    )
    for kind in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
        assert enrolled.extensions.get_extension_for_class(kind) == (
            software.extensions.get_extension_for_class(kind)
        )


def test_a_folder_without_publication_url_certifies_without_pointers(tmp_path):
    pki.init_pki(tmp_path / "keys")
    assert pki.publication_url(tmp_path / "keys") is None
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tanpa Alamat")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    cert = hsm.certify_csr(tmp_path / "keys", csr)
    for kind in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(kind)


def test_letter_signed_on_the_token_validates(enrolled, keys, timestamper):
    with hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=keys) as signer:
        assert isinstance(signer.pyhanko_signer, PKCS11Signer)  # the signature is made on the token
        assert signer.cert == enrolled
        assert signer.common_name == "Budi Santoso"
        letters = [
            signing.sign_letter(
                one_page_pdf(f"Surat {i}"),
                signer,
                timestamper,
                reason="Surat keterangan",
                location="Desa Grogol",
            )
            for i in range(2)
        ]
    for pdf in letters:
        assert_certified_by(pdf, keys, "Budi Santoso")


def test_wrong_pin_raises_wrong_passphrase_and_signs_nothing(enrolled, keys):
    # WrongPassphrase is what Issuer.unlock audits as "sign_failed"; no signer is returned,
    # so there is nothing to sign with
    for wrong in ("000000", "", PIN + "0"):
        with pytest.raises(signing.WrongPassphrase, match="Kata sandi penandatangan salah"):
            hsm.load_hsm_signer(MODULE, TOKEN, KEY, wrong, keys_dir=keys)
    # the failed logins left no one logged in: the right PIN still opens the key
    hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=keys).close()


def test_private_key_cannot_leave_the_token(enrolled):
    session = hsm.open_session(MODULE, TOKEN, PIN)
    try:
        (key,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: KEY}
        )
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(AttributeSensitive):
            key[Attribute.PRIVATE_EXPONENT]
        # the certificate sits beside the key under the same CKA_ID
        (cert,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: KEY}
        )
        assert cert[Attribute.ID] == key[Attribute.ID]
        assert cert[Attribute.VALUE] == enrolled.public_bytes(serialization.Encoding.DER)
    finally:
        session.close()


def test_session_is_per_batch(enrolled, keys):
    signer = hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=keys)
    # one login per process and token: a second batch waits for this one to close
    with pytest.raises(hsm.TokenBusy):
        hsm.load_hsm_signer(MODULE, TOKEN, KEY, "000000", keys_dir=keys)
    session = signer.pyhanko_signer.pkcs11_session
    signer.close()
    signer.close()  # idempotent
    with pytest.raises(SessionHandleInvalid):
        session.generate_random(64)
    hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=keys).close()


def test_key_label_is_not_reused(enrolled, keys):
    with pytest.raises(signing.SigningError, match="sudah dipakai"):
        hsm.enroll_hsm_signer(
            MODULE,
            TOKEN,
            KEY,
            PIN,
            keys_dir=keys,
            username="x",
            full_name="X",
            title="Kepala Desa",
            village="Desa Grogol",
        )


def test_certificate_of_another_ca_is_refused(enrolled, keys, tmp_path):
    pki.init_pki(tmp_path)
    with pytest.raises(signing.SigningError, match="tidak diterbitkan"):
        hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=tmp_path)
    # the session was closed on the way out, else this login would be TokenBusy
    hsm.load_hsm_signer(MODULE, TOKEN, KEY, PIN, keys_dir=keys).close()


def test_unknown_token_is_a_signing_error(token, keys):
    with pytest.raises(signing.SigningError, match="tidak ditemukan"):
        hsm.load_hsm_signer(MODULE, "tidak-ada", KEY, PIN, keys_dir=keys)
