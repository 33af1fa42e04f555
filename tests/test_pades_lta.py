"""Issue 12 item 3: letters are PAdES B-LTA at issue (a DSS with the revocation data our own
OCSP responder and root CRL give, then a document timestamp), validated by pyHanko's AdES LTA
validation with revocation data REQUIRED and online fetching OFF, so the embedded data has to
suffice; our own verdict still says VALID (ASLI)."""

from __future__ import annotations

import asyncio
import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from engine.trust import lta, pki, signing
from engine.trust.pki.ocsp import CertStatus
from engine.trust.registry import verify_letter
from engine.trust.verification import VALID, CryptoOk, crypto_check
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer, one_page_pdf
from tests.test_issuance import actor, ready_to_sign

REQUIRED = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED


def _root(keys_dir: Path) -> asn1_x509.Certificate:
    der = pki.load_root_ca(keys_dir).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


def _lta_validate(pdf: bytes, keys_dir: Path, intermediate_rule=REQUIRED):
    """pyHanko's PAdES LTA validation (ETSI EN 319 102-1, 5.6.3) of the certification
    signature: our root the only trust anchor, revocation data required for the end-entity
    certificates (and, by default, for the issuing CA), nothing fetched online."""
    policy = CertRevTrustPolicy(RevocationCheckingPolicy(REQUIRED, intermediate_rule))
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=[_root(keys_dir)]),
                revinfo_policy=policy,
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    reader = PdfFileReader(BytesIO(pdf))
    first = reader.embedded_signatures[0]
    return asyncio.run(ades_lta_validation(first, spec))


def _signatures(pdf: bytes) -> list[EmbeddedPdfSignature]:
    return list(PdfFileReader(BytesIO(pdf)).embedded_signatures)


def _dss(pdf: bytes) -> dict:
    return PdfFileReader(BytesIO(pdf)).root["/DSS"]


def _ocsp_serials(pdf: bytes) -> set[int]:
    out = set()
    for ref in _dss(pdf).get("/OCSPs", []):
        resp = asn1_ocsp.OCSPResponse.load(ref.get_object().data)
        for single in resp.basic_ocsp_response["tbs_response_data"]["responses"]:
            assert single["cert_status"].name == "good"
            out.add(single["cert_id"]["serial_number"].native)
    return out


# --------------------------------------------------------------------------- issued letters


def test_an_issued_letter_is_pades_b_lta_and_still_asli(services, logins, passphrase):
    from tests.letters import GROGOL

    keys = services.settings.keys_dir
    head = actor(services, "head.grogol")
    ((request_id, version),) = ready_to_sign(services, logins, GROGOL, "grogol", 1)
    letter = services.issuer.sign(head, request_id, version=version, passphrase=passphrase)
    pdf = letter.pdf

    # Certification signature, then exactly one archival revision with a document timestamp.
    sigs = _signatures(pdf)
    assert [s.sig_object_type for s in sigs] == ["/Sig", "/DocTimeStamp"]
    certified = pdf[: int(sigs[0].byte_range[2]) + int(sigs[0].byte_range[3])]
    assert len(certified) < len(pdf)
    # The registry keeps the hash of the letter as certified: what the verdict looks up.
    assert letter.pdf_sha256 == hashlib.sha256(certified).hexdigest()

    # The DSS holds the signer's and the TSA's OCSP responses (good) and their chains.
    signer_cert = x509.load_der_x509_certificate(sigs[0].signer_cert.dump())
    tsa_cert = pki.load_tsa_cert(keys)
    assert _ocsp_serials(pdf) == {signer_cert.serial_number, tsa_cert.serial_number}
    dss_certs = {
        x509.load_der_x509_certificate(r.get_object().data).serial_number
        for r in _dss(pdf)["/Certs"]
    }
    assert {
        signer_cert.serial_number,
        tsa_cert.serial_number,
        pki.load_issuing_ca(keys).serial_number,
        pki.load_root_ca(keys).serial_number,
    } <= dss_certs

    # pyHanko, with a validation context made from the DSS alone (no fetching), revocation
    # data REQUIRED for the signer and the TSA: the embedded data suffices. (This deployment
    # has no publication URL, so its issuing CA declares no CRL and the server folder holds
    # no root CRL; the full-chain PAdES LTA validation is the test below.)
    reader = PdfFileReader(BytesIO(pdf))
    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(REQUIRED, RevocationCheckingRule.CHECK_IF_DECLARED)
    )
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [_root(keys)], "allow_fetching": False, "revinfo_policy": policy}
    )
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.bottom_line and status.trusted, status.pretty_print_details()
    assert status.modification_level == ModificationLevel.LTA_UPDATES
    stamp_status = validate_pdf_timestamp(
        reader.embedded_signatures[1],
        DocumentSecurityStore.read_dss(reader).as_validation_context(
            {"trust_roots": [_root(keys)], "allow_fetching": False, "revinfo_policy": policy}
        ),
    )
    assert stamp_status.intact and stamp_status.valid and stamp_status.trusted
    # Without the DSS, the same policy finds no revocation data for the signer.
    bare = validate_pdf_signature(
        PdfFileReader(BytesIO(certified)).embedded_signatures[0],
        ValidationContext(
            trust_roots=[_root(keys)], allow_fetching=False, revinfo_policy=policy, crls=[]
        ),
    )
    assert not bare.trusted

    # Our verdict: ASLI, the document timestamp listed, intact and trusted.
    verdict = verify_letter(pdf, services.factory, keys)
    assert verdict.status == VALID, verdict.reasons
    kinds = [d.kind for d in verdict.signatures]
    assert kinds == ["signature", "document_timestamp"]
    stamp = verdict.signatures[1]
    assert stamp.intact and stamp.trusted and stamp.timestamp_time is not None
    assert verdict.signatures[0].changes.startswith("hanya pembaruan arsip")
    # The certified revision on its own (as issued before this change) is still ASLI too.
    assert verify_letter(certified, services.factory, keys).status == VALID


def test_a_batch_reuses_the_validation_data(services, logins, passphrase):
    """One OCSP response per signer per batch: the second letter embeds the same DER."""
    from tests.letters import GROGOL

    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    try:
        pdfs = []
        for request_id, version in ready_to_sign(services, logins, GROGOL, "grogol", 2):
            letter = services.issuer.issue(head, request_id, version=version, signer=signer)
            pdfs.append(letter.pdf)
    finally:
        signer.close()

    def ocsp_der(pdf: bytes) -> list[bytes]:
        return [r.get_object().data for r in _dss(pdf)["/OCSPs"]]

    assert ocsp_der(pdfs[0]) == ocsp_der(pdfs[1])
    assert isinstance(signer.archive, lta.ArchiveData)


# --------------------------------------------------------------------------- full chain


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A regency PKI with a publication URL: certificates declare a CRL and an OCSP address
    (nothing listens there: any fetch would fail), and the server folder holds the root CRL."""
    keys = tmp_path_factory.mktemp("lta-keys")
    pki.init_pki(
        keys, root_dir=tmp_path_factory.mktemp("lta-root"), public_url="http://127.0.0.1:9"
    )
    assert pki.root_crl(keys) is not None
    return keys


def _good(_serial: int) -> CertStatus:
    return CertStatus(issued=True)


@pytest.fixture(scope="module")
def lta_letter(published: Path) -> tuple[bytes, bytes, signing.LoadedSigner]:
    bundle = issue_test_signer(published)
    signer = signing.load_signer(bundle.p12, PASSPHRASE, keys_dir=published)
    tsa = signing.make_timestamper(None, published)
    certified = signing.sign_letter(one_page_pdf(), signer, tsa, reason="Uji", location="Grogol")
    data = lta.archive_for_signer(signer, published, _good, tsa)
    assert len(data.crls) == 1  # the root's CRL over the issuing CA
    return certified, lta.extend_letter(certified, data, tsa), signer


def test_full_chain_b_lta_validates_from_embedded_data_only(published, lta_letter):
    certified, pdf, _ = lta_letter
    result = _lta_validate(pdf, published)
    assert result.ades_subindic == AdESPassed.OK, result
    assert result.api_status.bottom_line and result.api_status.trusted
    # The same validation of the letter without its DSS cannot find revocation data: the pass
    # above came from the embedded DSS.
    bare = _lta_validate(certified, published)
    assert bare.ades_subindic != AdESPassed.OK
    assert isinstance(crypto_check(pdf, trust_roots=[pki.load_root_ca(published)]), CryptoOk)


def test_refresh_appends_a_second_archive_timestamp(published, lta_letter):
    _, pdf, signer = lta_letter
    tsa = signing.make_timestamper(None, published)
    data = lta.archive_data(published, [signer.cert], _good, require_good=False)
    refreshed = lta.refresh_pdf(pdf, data, tsa)
    assert refreshed.startswith(pdf)
    assert [s.sig_object_type for s in _signatures(refreshed)] == [
        "/Sig",
        "/DocTimeStamp",
        "/DocTimeStamp",
    ]
    assert lta.document_timestamp_count(refreshed) == 2
    assert _lta_validate(refreshed, published).ades_subindic == AdESPassed.OK
    checked = crypto_check(refreshed, trust_roots=[pki.load_root_ca(published)])
    assert isinstance(checked, CryptoOk), checked
    assert [d.kind for d in checked.details] == [
        "signature",
        "document_timestamp",
        "document_timestamp",
    ]


def test_a_revoked_signer_gets_no_archive_data(published, lta_letter):
    from datetime import UTC, datetime

    _, _, signer = lta_letter

    def revoked(serial: int) -> CertStatus:
        if serial == signer.cert.serial_number:
            return CertStatus(True, datetime.now(UTC), x509.ReasonFlags.key_compromise)
        return CertStatus(issued=True)

    with pytest.raises(signing.SigningError, match="OCSP"):
        lta.archive_data(published, [signer.cert], revoked)
