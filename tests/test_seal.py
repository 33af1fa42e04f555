"""The offline seal in the QR: printable size, verifies against the signed key list, and
rejects a tampered seal."""

from __future__ import annotations

import qrcode
from fastapi.testclient import TestClient
from qrcode.constants import ERROR_CORRECT_M

from engine.trust import pki
from engine.trust.seal import SealError, load_key_list, parse_qr, verify_seal
from suratdesa.web import create_app
from tests.letters import decode_qr
from tests.test_tamper import issue_letter


def qr_version(text: str) -> tuple[int, list[int]]:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.version, [d.mode for d in qr.data_list]


def test_qr_carries_a_verifiable_seal_and_stays_printable(settings, logins, passphrase):
    client = TestClient(create_app(settings))
    letter = issue_letter(client, logins, passphrase)
    (text,) = decode_qr(letter["pdf"])
    version, modes = qr_version(text)
    assert modes == [qrcode.util.MODE_ALPHA_NUM]  # the whole QR in alphanumeric mode
    assert version <= 15  # <= 35 mm with modules >= 0.4 mm (77 modules + quiet zone)
    # A real deployment URL is longer than the test's: still within the limit.
    longer = text.replace("HTTP://TESTSERVER", "HTTPS://SURAT.SUKOHARJOKAB.GO.ID")
    assert qr_version(longer)[0] <= 15

    key_list = client.get("/pki/seal-keys.cose").content
    keys = load_key_list(key_list, pki.load_trust_roots(settings.keys_dir))
    qr = parse_qr(text)
    fields = verify_seal(qr.seal, keys)
    assert fields.number == letter["number"]
    assert letter["verify_url"].endswith(qr.code)

    flipped = qr.seal[:-10] + ("A" if qr.seal[-10] != "A" else "B") + qr.seal[-9:]
    try:
        verify_seal(flipped, keys)
        raise AssertionError("a changed seal must not verify")
    except SealError:
        pass


def test_key_list_from_another_ca_is_refused(settings, tmp_path):
    from engine.trust.seal import build_key_list

    pki.init_pki(tmp_path)
    try:
        load_key_list(build_key_list(tmp_path), pki.load_trust_roots(settings.keys_dir))
        raise AssertionError("a key list signed by another CA must be refused")
    except SealError as e:
        assert "otoritas" in str(e)
