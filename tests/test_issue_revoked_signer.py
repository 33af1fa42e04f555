"""A signer's certificate revoked while a letter is being made: the short write that would store
it refuses, in words the signer reads, and nothing is issued: no letter, no number used, the
request still waiting for signature. Opening a revoked key (Issuer.unlock) says it was revoked,
and an account that never had a key says so."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import Forbidden
from engine.letters.group_issuance import issue_group
from engine.letters.signer_check import SignerRevoked
from engine.people import signers
from engine.people.users import get_user
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, NumberSequence
from tests.letters import GROGOL
from tests.test_issuance import actor, ready_to_sign, sequences


def revoke_head(services) -> None:
    admin = actor(services, "admin")
    with transaction(services.factory) as session:
        user = get_user(session, "head.grogol")
        signers.revoke_live_key(session, admin, user, "Kunci hilang", code="kunci-bocor")


def assert_nothing_issued(services, jobs) -> None:
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count(Letter.id))) == 0
        assert session.scalar(select(func.count()).select_from(NumberSequence)) == 0
        for request_id, version in jobs:
            request = session.get(LetterRequest, request_id)
            assert (request.state, request.version) == ("signing", version)


def test_a_certificate_revoked_before_the_store_issues_nothing(services, logins, passphrase):
    jobs = ready_to_sign(services, logins, GROGOL, "grogol", 2)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    # Rendered and signed with the key, then revoked by the regency admin before the store.
    services.issuer.before_store = lambda: revoke_head(services)
    with pytest.raises(SignerRevoked) as refused:
        services.issuer.issue(head, jobs[0][0], version=jobs[0][1], signer=signer)
    message = str(refused.value)
    assert "dicabut" in message and "Surat tidak diterbitkan" in message
    assert "Kunci bocor" in message  # the reason the admin chose
    assert_nothing_issued(services, jobs)
    # The same opened key cannot store another letter either; the number is still free.
    services.issuer.before_store = None
    with pytest.raises(SignerRevoked):
        services.issuer.issue(head, jobs[1][0], version=jobs[1][1], signer=signer)
    assert_nothing_issued(services, jobs)
    # Opening the key again: refused, saying it was revoked (not "no certificate").
    with pytest.raises(Forbidden, match="dicabut"):
        services.issuer.unlock(head, passphrase)


def test_a_batch_group_signed_with_a_revoked_certificate_stores_none(services, logins, passphrase):
    jobs = ready_to_sign(services, logins, GROGOL, "grogol", 3)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    services.issuer.before_store = lambda: revoke_head(services)
    outcomes = issue_group(services.issuer, head, jobs, signer)
    services.issuer.before_store = None
    assert [type(x) for x in outcomes] == [SignerRevoked] * 3
    assert_nothing_issued(services, jobs)


def test_a_letter_stored_before_the_revocation_stays_issued(services, logins, passphrase):
    jobs = ready_to_sign(services, logins, GROGOL, "grogol", 2)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    first = services.issuer.issue(head, jobs[0][0], version=jobs[0][1], signer=signer)
    revoke_head(services)
    with pytest.raises(SignerRevoked):
        services.issuer.issue(head, jobs[1][0], version=jobs[1][1], signer=signer)
    assert first.seq == 1 and sequences(services, GROGOL) == [1]
    with transaction(services.factory) as session:  # number 2 was not used: still the next
        assert session.scalar(select(NumberSequence.last_seq)) == 1
        assert session.get(Letter, first.id).status == "active"


def test_unlock_without_any_key_says_so(services, passphrase):
    operator = actor(services, "operator.grogol")
    with pytest.raises(Forbidden, match="belum memiliki sertifikat penandatangan"):
        services.issuer.unlock(operator, passphrase)
