"""Issue 7, keys: the root CA key never lives on the server, and signer PKCS#12 files resist
passphrase guessing.

Root keys are looked for by public key, not by file name: every PEM private key in a folder is
parsed and compared with the root certificate's key, so a renamed copy is found too."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import algos
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from engine.config import PROJECT_ROOT
from engine.trust import pki, signing
from suratdesa.cli import main
from tests.conftest import require_tool
from tests.pdf_fixtures import PASSPHRASE, assert_certified_by, issue_test_signer, one_page_pdf

PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?"
    rb"-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
    re.S,
)


def private_keys_in(folder: Path) -> dict[Path, list]:
    """Every private key stored in any file under ``folder`` (PEM blocks, or a whole-file DER
    PKCS#8). An encrypted key fails the test: it could hide the root from this check."""
    found: dict[Path, list] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        keys = []
        for block in PEM_PRIVATE_KEY.findall(data):
            assert b"ENCRYPTED" not in block, f"{path}: an encrypted key cannot be checked"
            keys.append(serialization.load_pem_private_key(block, password=None))
        if not keys and data[:1] == b"\x30":
            with contextlib.suppress(ValueError, TypeError):
                keys.append(serialization.load_der_private_key(data, password=None))
        if keys:
            found[path] = keys
    return found


def files_with_the_key_of(cert: x509.Certificate, folder: Path) -> list[Path]:
    want = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [
        path
        for path, keys in private_keys_in(folder).items()
        for key in keys
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == want
    ]


def root_cert(folder: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / "root-ca.pem").read_bytes())


# --- the demo ---------------------------------------------------------------------------------


def test_demo_server_keys_folder_holds_no_root_key(tmp_path):
    """`suratdesa demo` as a newcomer runs it (keys/dev and keys/dev-root, here in a temp dir)."""
    keys = tmp_path / "keys" / "dev"
    env = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SURATDESA_KEYS_DIR": str(keys),
        "SURATDESA_AUDIT_DIR": str(tmp_path / "audit"),
        "SURATDESA_SECRET_KEY": "x" * 32,
    }
    result = subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root_dir = tmp_path / "keys" / "dev-root"
    assert str(root_dir) in result.stdout  # the demo says where the root key is

    root = root_cert(keys)
    assert root == root_cert(root_dir)
    assert files_with_the_key_of(root, keys) == []
    # the check can see a root key: the separate folder has it, and the server's own keys are
    # found in the server folder
    assert files_with_the_key_of(root, root_dir) == [root_dir / "root-ca.key.pem"]
    assert files_with_the_key_of(pki.load_issuing_ca(keys), keys) == [keys / "issuing-ca.key.pem"]
    assert set(private_keys_in(keys)) == {
        keys / "issuing-ca.key.pem",
        keys / "tsa.key.pem",
        keys / "seal.key.pem",
    }


def test_the_test_suites_keys_folder_holds_no_root_key(keys_dir):
    assert files_with_the_key_of(pki.load_root_ca(keys_dir), keys_dir) == []


def test_a_renamed_root_key_in_the_server_folder_is_found_and_refused(tmp_path):
    """The detector is honest (a copy under another name is found), and `keys install` refuses
    to work in a folder that holds the root key."""
    root_dir, server = tmp_path / "usb", tmp_path / "server"
    assert main(["keys", "root", "init", "--dir", str(root_dir)]) == 0
    assert main(["keys", "request", "--keys-dir", str(server)]) == 0
    chain = tmp_path / "chain.pem"
    csr = str(server / "issuing-ca.csr.pem")
    assert main(["keys", "root", "sign", "--dir", str(root_dir), csr, "--out", str(chain)]) == 0
    (server / "backup.txt").write_bytes(b"notes\n" + (root_dir / "root-ca.key.pem").read_bytes())
    assert files_with_the_key_of(root_cert(root_dir), server) == [server / "backup.txt"]
    assert main(["keys", "install", "--keys-dir", str(server), str(chain)]) == 1
    assert not (server / "issuing-ca.pem").exists()
    (server / "backup.txt").unlink()
    assert main(["keys", "install", "--keys-dir", str(server), str(chain)]) == 0


# --- the offline ceremony ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory):
    """The ceremony of docs/pki.md through the CLI: root offline, request, sign, install."""
    base = tmp_path_factory.mktemp("ceremony")
    usb, server, transfer = base / "usb-root", base / "server", base / "transfer"
    transfer.mkdir()
    assert main(["keys", "root", "init", "--dir", str(usb)]) == 0
    assert main(["keys", "request", "--keys-dir", str(server)]) == 0
    csr = transfer / "issuing-ca.csr.pem"
    csr.write_bytes((server / "issuing-ca.csr.pem").read_bytes())
    assert main(["keys", "root", "sign", "--dir", str(usb), str(csr)]) == 0
    chain = transfer / "issuing-ca.chain.pem"
    assert chain.exists()
    assert main(["keys", "install", "--keys-dir", str(server), str(chain)]) == 0
    return usb, server, transfer


def test_ceremony_chain_verifies(ceremony, capsys):
    usb, server, _ = ceremony
    root = pki.load_root_ca(server)
    issuing = pki.load_issuing_ca(server)
    tsa, _ = pki.load_tsa(server)
    assert root == root_cert(usb)
    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    tsa.verify_directly_issued_by(issuing)
    bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = issuing.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert issuing.not_valid_after_utc <= root.not_valid_after_utc

    assert files_with_the_key_of(root, server) == []
    assert {p.name for p in private_keys_in(server)} == {
        "issuing-ca.key.pem",
        "tsa.key.pem",
        "seal.key.pem",
    }
    assert not (server / "issuing-ca.csr.pem").exists()  # installed: the request is gone
    assert sorted(p.name for p in usb.iterdir() if not p.name.startswith(".")) == [
        "root-ca.key.pem",
        "root-ca.pem",
    ]
    # the fingerprint the operator compares on both machines is the root's real SHA-256
    capsys.readouterr()
    main(["keys", "install", "--keys-dir", str(server), str(ceremony[2] / "issuing-ca.chain.pem")])
    expected = root.fingerprint(hashes.SHA256()).hex(":").upper()
    assert expected in capsys.readouterr().out


def test_letter_signed_under_the_ceremony_pki_validates(ceremony):
    _, server, _ = ceremony
    bundle = issue_test_signer(server)
    with signing.load_signer(bundle.p12, PASSPHRASE, keys_dir=server) as signer:
        pdf = signing.sign_letter(
            one_page_pdf(),
            signer,
            signing.make_timestamper(None, server),
            reason="Surat keterangan",
            location="Desa Grogol",
        )
    assert_certified_by(pdf, server, "Budi Santoso")
    # a CRL and the seal's key list are made with server keys only
    crl = x509.load_der_x509_crl(
        pki.build_crl(server, [(bundle.serial, signer.cert.not_valid_before_utc)])
    )
    assert crl.is_signature_valid(pki.load_issuing_ca(server).public_key())
    from engine.trust.seal import build_key_list, load_key_list

    assert load_key_list(build_key_list(server), [pki.load_root_ca(server)])


def test_ceremony_refuses_what_does_not_fit(ceremony, tmp_path, capsys):
    usb, server, transfer = ceremony
    other = tmp_path / "other-root"
    assert main(["keys", "root", "init", "--dir", str(other)]) == 0
    # another root's signature on this server's request: the installed root differs
    foreign = tmp_path / "foreign.pem"
    other_server = tmp_path / "other-server"
    assert main(["keys", "request", "--keys-dir", str(other_server)]) == 0
    csr = str(other_server / "issuing-ca.csr.pem")
    assert main(["keys", "root", "sign", "--dir", str(other), csr, "--out", str(foreign)]) == 0
    capsys.readouterr()
    assert main(["keys", "install", "--keys-dir", str(server), str(foreign)]) == 1
    assert "None of the certificates is for the key" in capsys.readouterr().err
    # a certificate for the right key, but signed by another root than the installed one
    assert main(["keys", "install", "--keys-dir", str(other_server), str(foreign)]) == 0
    assert pki.load_root_ca(other_server) != pki.load_root_ca(server)
    # a request whose signature does not match its key is refused by the root
    good = x509.load_pem_x509_csr((transfer / "issuing-ca.csr.pem").read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    broken = bytearray(good)
    broken[-5] ^= 0x01
    bad_csr = tmp_path / "bad.csr"
    bad_csr.write_bytes(bytes(broken))
    assert main(["keys", "root", "sign", "--dir", str(usb), str(bad_csr)]) == 1
    assert "signature" in capsys.readouterr().err
    # `keys request` on an installed server changes nothing
    assert main(["keys", "request", "--keys-dir", str(server)]) == 1
    assert "already installed" in capsys.readouterr().err


def test_cli_ceremony_as_a_process(tmp_path):
    """The same commands as separate processes, as the staff type them (entry point wiring)."""

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "suratdesa.cli", *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "SURATDESA_KEYS_DIR": str(tmp_path / "server")},
            cwd=tmp_path,
        )

    assert run("keys", "root", "init", "--dir", "usb").returncode == 0
    request = run("keys", "request")  # SURATDESA_KEYS_DIR
    assert request.returncode == 0, request.stderr
    sign = run("keys", "root", "sign", "--dir", "usb", "server/issuing-ca.csr.pem")
    assert sign.returncode == 0, sign.stderr
    # the key fingerprint printed on the server and on the offline machine is the same
    fp = re.search(r"key SHA-256 : (\S+)", request.stdout).group(1)
    assert f"key SHA-256 : {fp}" in sign.stdout
    install = run("keys", "install", "server/issuing-ca.chain.pem")
    assert install.returncode == 0, install.stderr
    assert files_with_the_key_of(root_cert(tmp_path / "usb"), tmp_path / "server") == []


def test_dev_keys_init_keeps_the_root_apart_and_says_so(tmp_path, capsys):
    keys = tmp_path / "dev"
    assert main(["keys", "init", "--keys-dir", str(keys)]) == 0
    assert f"root CA private key is in {tmp_path / 'dev-root'}" in capsys.readouterr().out
    assert files_with_the_key_of(pki.load_root_ca(keys), keys) == []
    assert files_with_the_key_of(pki.load_root_ca(keys), tmp_path / "dev-root")


# --- signer PKCS#12 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(ceremony):
    return issue_test_signer(ceremony[1])


def _pbes2(alg: algos.EncryptionAlgorithm) -> tuple[str, str, int, bytes]:
    assert alg["algorithm"].native == "pbes2"
    kdf = alg["parameters"]["key_derivation_func"]
    assert kdf["algorithm"].native == "pbkdf2"
    return (
        kdf["parameters"]["prf"]["algorithm"].native,
        alg["parameters"]["encryption_scheme"]["algorithm"].native,
        kdf["parameters"]["iteration_count"].native,
        kdf["parameters"]["salt"].native,
    )


def test_signer_pkcs12_uses_pbes2_aes256_with_600k_rounds(bundle):
    """Read from the file's own ASN.1, not from the code that wrote it."""
    pfx = asn1_pkcs12.Pfx.load(bundle.p12)
    assert pfx["auth_safe"]["content_type"].native == "data"
    safes = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
    schemes, key_bags = [], 0
    for info in safes:
        kind = info["content_type"].native
        if kind == "encrypted_data":
            enc = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            schemes.append(_pbes2(enc))
            continue
        assert kind == "data", kind
        for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
            assert bag["bag_id"].native != "key_bag", "a private key stored unencrypted"
            if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                key_bags += 1
                schemes.append(_pbes2(bag["bag_value"]["encryption_algorithm"]))
    assert key_bags == 1
    assert schemes
    for prf, cipher, rounds, salt in schemes:
        assert prf == "sha256"
        assert cipher == "aes256_cbc"
        assert rounds >= 600_000
        assert len(salt) >= 8
    # the integrity MAC is keyed from the same passphrase: it must not be a cheaper oracle
    # (one PKCS#12-KDF round is half a PBKDF2-HMAC round, hence twice the count)
    mac = pfx["mac_data"]
    assert mac["mac"]["digest_algorithm"]["algorithm"].native == "sha256"
    assert mac["iterations"].native >= 2 * 600_000
    assert len(mac["mac_salt"].native) >= 16


def test_signer_pkcs12_loads_in_cryptography_pyhanko_and_engine(bundle, ceremony):
    from pyhanko.sign import signers

    key, cert, cas = pkcs12.load_key_and_certificates(bundle.p12, PASSPHRASE.encode())
    assert cert.serial_number == bundle.serial and len(cas) == 2
    stock = signers.SimpleSigner.load_pkcs12_data(bundle.p12, [], passphrase=PASSPHRASE.encode())
    assert stock.signing_cert.serial_number == bundle.serial
    loaded = signing.load_signer(bundle.p12, PASSPHRASE, keys_dir=ceremony[1])
    assert loaded.common_name == "Budi Santoso"


def test_openssl_checks_the_strengthened_mac(bundle, tmp_path):
    """An independent implementation (OpenSSL) verifies our MAC and reads the same rounds."""
    openssl = require_tool("openssl")
    path = tmp_path / "signer.p12"
    path.write_bytes(bundle.p12)
    ok = subprocess.run(
        [openssl, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "env:P12PASS"],
        capture_output=True,
        text=True,
        env={**os.environ, "P12PASS": PASSPHRASE},
    )
    assert ok.returncode == 0, ok.stderr
    assert "MAC: sha256, Iteration 1200000" in ok.stdout + ok.stderr
    assert "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256" in (
        ok.stdout + ok.stderr
    )
    bad = subprocess.run(
        [openssl, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "pass:salah"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "mac verify error" in (bad.stdout + bad.stderr).lower()


def test_wrong_passphrase_fails_cleanly(bundle, ceremony):
    with pytest.raises(signing.WrongPassphrase, match="Kata sandi penandatangan salah"):
        signing.load_signer(bundle.p12, "salah-sekali", keys_dir=ceremony[1])
    with pytest.raises(signing.WrongPassphrase):
        signing.load_signer(bundle.p12, "", keys_dir=ceremony[1])
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.p12, PASSPHRASE.upper().encode())


def test_tampered_pkcs12_is_refused(bundle, ceremony):
    pfx = asn1_pkcs12.Pfx.load(bundle.p12)
    digest = bytearray(pfx["mac_data"]["mac"]["digest"].native)
    digest[0] ^= 0x01
    forged = asn1_pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": pfx["auth_safe"],
            "mac_data": {
                "mac": {"digest_algorithm": {"algorithm": "sha256"}, "digest": bytes(digest)},
                "mac_salt": pfx["mac_data"]["mac_salt"].native,
                "iterations": pfx["mac_data"]["iterations"].native,
            },
        }
    ).dump()
    with pytest.raises(signing.WrongPassphrase):
        signing.load_signer(forged, PASSPHRASE, keys_dir=ceremony[1])


def test_non_ascii_passphrase_round_trips(ceremony):
    """The MAC key derivation encodes the passphrase as OpenSSL and cryptography do."""
    from engine.trust.pki import issue_signer

    phrase = "Kata sandi dé Ñgadirejo ꦱꦸꦫꦠ꧀"  # Latin-1 and Javanese script (BMP)
    b = issue_signer(
        ceremony[1],
        username="kades.x",
        full_name="X Contoh",
        title="Kepala Desa",
        village="Desa X",
        passphrase=phrase,
    )
    assert signing.load_signer(b.p12, phrase, keys_dir=ceremony[1]).common_name == "X Contoh"


def test_pkcs12_made_with_the_old_kdf_still_loads(ceremony):
    """Bundles already in databases: PBKDF2 with 20,000 rounds, MAC with 2048."""
    server = ceremony[1]
    fresh = issue_test_signer(server)
    key, cert, cas = pkcs12.load_key_and_certificates(fresh.p12, PASSPHRASE.encode())
    old = pkcs12.serialize_key_and_certificates(
        b"kades.grogol",
        key,
        cert,
        cas,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    pfx = asn1_pkcs12.Pfx.load(old)
    assert pfx["mac_data"]["iterations"].native < 600_000  # really the old format
    loaded = signing.load_signer(old, PASSPHRASE, keys_dir=server)
    assert loaded.cert == cert
    with pytest.raises(signing.WrongPassphrase):
        signing.load_signer(old, "salah", keys_dir=server)
