"""The letter CMS assembled from a batch's prepared DER parts is the CMS pyHanko makes, and
letters signed that way (and with an EC P-256 signer and TSA) validate like any other."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest
from asn1crypto import cms
from pyhanko.sign import signers
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from engine.aio import run_sync
from engine.trust import pki, signing
from tests.letters import assert_certified_and_timestamped
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer, one_page_pdf


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d)
    return d


@pytest.fixture(scope="module")
def signer(keys):
    return signing.load_signer(issue_test_signer(keys).p12, PASSPHRASE, keys_dir=keys)


def _pyhanko_cms(signer, digest: bytes, when: datetime) -> bytes:
    """The CMS pyHanko's own SimpleSigner code makes for ``digest`` (no timestamp)."""
    made = run_sync(
        signers.SimpleSigner.async_sign(
            signer.pyhanko_signer,
            digest,
            "sha256",
            use_pades=True,
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=when),
        )
    )
    return made.dump()


def test_assembled_cms_is_byte_for_byte_what_pyhanko_makes(signer):
    """RSA PKCS#1 v1.5 is deterministic, so without a timestamp the two must be identical."""
    when = datetime.now(UTC)
    fast = signer.pyhanko_signer
    for _ in range(3):  # the first builds the template, the next ones reuse it
        digest = hashlib.sha256(os.urandom(32)).digest()
        ours = run_sync(
            fast.async_sign(
                digest,
                "sha256",
                use_pades=True,
                signed_attr_settings=PdfCMSSignedAttributes(signing_time=when),
            )
        )
        assert ours == _pyhanko_cms(signer, digest, when)


def test_assembled_timestamp_token_parses_as_an_rfc3161_token(keys):
    timestamper = signing.make_timestamper(None, keys)
    digest = hashlib.sha256(b"letter signature").digest()
    tokens = [timestamper.token_der(digest) for _ in range(2)]
    assert tokens[0] != tokens[1]  # serial and nonce differ
    for der in tokens:
        token = cms.ContentInfo.load(der)
        signed_data = token["content"]
        tst = signed_data["encap_content_info"]["content"].parsed
        assert tst["message_imprint"]["hashed_message"].native == digest
        assert token.dump(force=True) == der  # canonical DER, as asn1crypto writes it


def test_letters_signed_one_after_another_all_validate(keys, signer):
    timestamper = signing.make_timestamper(None, keys)
    for i in range(3):
        pdf = signing.sign_letter(
            one_page_pdf(), signer, timestamper, reason=f"Surat {i}", location="Desa Grogol"
        )
        assert_certified_and_timestamped(pdf, keys)
