"""`suratdesa keys ...`: the key ceremony (docs/pki.md) and signer certificates."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from engine.config import get_settings
from engine.storage.db import session_factory, transaction
from suratdesa.cli_common import BY_HELP, _actor, _secret


def _pki_command(func):
    """Key commands report a PkiError (missing, mismatched or refused key material) plainly."""

    def run(args: argparse.Namespace) -> int:
        from engine.trust.pki import PkiError

        try:
            return func(args)
        except PkiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _server_keys_dir(args: argparse.Namespace) -> Path:
    return Path(args.keys_dir) if args.keys_dir else get_settings().keys_dir


@_pki_command
def cmd_keys_init(args: argparse.Namespace) -> int:
    """Development shortcut: the whole ceremony at once, the root key in a separate folder."""
    from engine.trust import pki

    keys_dir = _server_keys_dir(args)
    root_dir = Path(args.root_dir) if args.root_dir else pki.default_root_dir(keys_dir)
    moved = pki.has_legacy_root_key(keys_dir)
    public_url = args.public_url or get_settings().public_url
    paths = pki.init_pki(keys_dir, root_dir=root_dir, public_url=public_url)
    print(f"PKI ready in {paths.keys_dir}: issuing CA, TSA and seal keys, root certificate.")
    _say_publication(keys_dir)
    if moved:
        print(f"Moved the root CA key an older version kept in {keys_dir} to {root_dir}.")
    if pki.root_paths(root_dir).key.exists():
        print(
            f"DEVELOPMENT ONLY: the root CA private key is in {root_dir}, outside the server "
            "folder. In production the root is made offline: see docs/pki.md."
        )
    return 0


def _say_publication(keys_dir: Path) -> None:
    from engine.trust import pki

    url = pki.publication_url(keys_dir)
    if url is None:
        print(
            "Certificates carry no CRL/OCSP address: this folder has no publication URL "
            "(`suratdesa keys publication-url URL` sets one for certificates issued from now on)."
        )
    else:
        print(f"Certificates point at {url}{pki.CRL_PATH} and {url}{pki.OCSP_PATH}.")


@_pki_command
def cmd_keys_publication_url(args: argparse.Namespace) -> int:
    """Show or set the base URL the folder's certificates point at for CRL and OCSP."""
    from engine.trust import pki

    keys_dir = _server_keys_dir(args)
    if args.url:
        current = pki.publication_url(keys_dir)
        url = pki.set_publication_url(keys_dir, args.url, replace=args.replace)
        if current is not None and url == current and current != args.url.rstrip("/"):
            print(f"Kept {current} (--replace to change it; the old address must stay served).")
    _say_publication(keys_dir)
    return 0


def say_where_the_root_is(keys_dir: Path) -> None:
    from engine.trust import pki

    root_dir = pki.default_root_dir(keys_dir)
    if pki.root_paths(root_dir).key.exists():
        print(
            f"Kunci: server {keys_dir} (tanpa kunci root CA); kunci root CA pengembangan "
            f"disimpan terpisah di {root_dir}. Produksi: root CA dibuat luring (docs/pki.md)."
        )


@_pki_command
def cmd_keys_root_init(args: argparse.Namespace) -> int:
    from engine.trust import pki

    rp = pki.create_root(Path(args.dir), regency=args.regency)
    cert = pki.load_root_cert_file(rp.cert)
    print(f"Root CA in {rp.root_dir} (key {rp.key.name}, certificate {rp.cert.name}).")
    print(f"  subject     : {cert.subject.rfc4514_string()}")
    print(f"  valid until : {cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  SHA-256     : {pki.fingerprint(cert)}")
    print("Keep this folder offline. Write the SHA-256 down: the server prints it on install.")
    return 0


@_pki_command
def cmd_keys_request(args: argparse.Namespace) -> int:
    from engine.trust import pki

    keys_dir = _server_keys_dir(args)
    csr_path = pki.request_issuing_ca(keys_dir, regency=args.regency)
    pki.set_publication_url(keys_dir, args.public_url or get_settings().public_url)
    csr = pki.load_csr(csr_path.read_bytes())
    print(f"Issuing CA key in {keys_dir}; its certificate request: {csr_path}")
    print(f"  subject     : {csr.subject.rfc4514_string()}")
    print(f"  key SHA-256 : {pki.fingerprint(csr.public_key())}")
    _say_publication(keys_dir)
    print(
        "Copy the request to the offline machine and run `suratdesa keys root sign` there "
        "(with --public-url the same address); check that it shows the same key SHA-256."
    )
    return 0


@_pki_command
def cmd_keys_root_sign(args: argparse.Namespace) -> int:
    from engine.trust import pki

    csr_path = Path(args.csr)
    csr = pki.load_csr(csr_path.read_bytes())
    cert = pki.sign_issuing_csr(Path(args.dir), csr, public_url=args.public_url)
    root = pki.load_root_cert_file(pki.root_paths(Path(args.dir)).cert)
    out = Path(args.out) if args.out else csr_path.with_name("issuing-ca.chain.pem")
    pki.write_chain(out, [cert, root])
    print(f"Signed the issuing CA: {out} (its certificate, then the root certificate).")
    if args.public_url:
        crl_out = out.with_name(ROOT_CRL_NAME)
        crl_out.write_bytes(pki.sign_root_crl(Path(args.dir)))
        print(f"  root CRL    : {crl_out} (install it with the chain; sign it again yearly)")
    print(f"  subject     : {cert.subject.rfc4514_string()}")
    print(f"  key SHA-256 : {pki.fingerprint(cert.public_key())}")
    print(f"  valid until : {cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  root SHA-256: {pki.fingerprint(root)}")
    print("Copy the file to the server and run `suratdesa keys install` there.")
    return 0


@_pki_command
def cmd_keys_install(args: argparse.Namespace) -> int:
    from cryptography import x509

    from engine.trust import pki

    keys_dir = _server_keys_dir(args)
    certs = [c for f in args.certs for c in x509.load_pem_x509_certificates(Path(f).read_bytes())]
    paths = pki.install_issuing_ca(keys_dir, certs)
    root = pki.load_root_ca(keys_dir)
    print(f"Installed in {paths.keys_dir}: root certificate, issuing CA; TSA and seal keys ready.")
    for crl_file in {Path(f).with_name(ROOT_CRL_NAME) for f in args.certs}:
        if crl_file.exists():
            crl = pki.install_root_crl(keys_dir, crl_file.read_bytes())
            print(f"  root CRL    : installed, next update {crl.next_update_utc:%Y-%m-%d}")
    print(f"  root SHA-256: {pki.fingerprint(root)}  (must match `keys root init`)")
    return 0


ROOT_CRL_NAME = "root-ca.crl"
PUBLIC_URL_HELP = (
    "base URL the certificates point at for CRL and OCSP (default: SURATDESA_PUBLIC_URL); "
    "written once into the key folder"
)


@_pki_command
def cmd_keys_root_crl(args: argparse.Namespace) -> int:
    """Offline, once a year: the root signs its CRL (the issuing CA certificates it revoked)."""
    from engine.trust import pki

    revoked = [(int(s, 16), datetime.now(UTC)) for s in args.revoke or []]
    der = pki.sign_root_crl(Path(args.dir), revoked)
    out = pki.root_paths(Path(args.dir)).root_dir / ROOT_CRL_NAME  # sign_root_crl wrote it
    if args.out:
        out = Path(args.out)
        out.write_bytes(der)
    crl = pki.load_crl(der)
    print(f"Root CRL: {out} ({len(revoked)} revoked), next update {crl.next_update_utc:%Y-%m-%d}.")
    print("Copy it to the server and run `suratdesa keys install-crl` there.")
    return 0


@_pki_command
def cmd_keys_install_crl(args: argparse.Namespace) -> int:
    from engine.trust import pki

    crl = pki.install_root_crl(_server_keys_dir(args), Path(args.crl).read_bytes())
    print(f"Root CRL installed; next update {crl.next_update_utc:%Y-%m-%d}.")
    return 0


def cmd_keys_issue_signer(args: argparse.Namespace) -> int:
    from engine.bootstrap import enroll_hsm, enroll_signer
    from engine.people.users import get_user

    settings = get_settings()
    if args.hsm:
        if not settings.pkcs11_module or not settings.pkcs11_token:
            print(
                "--hsm butuh SURATDESA_PKCS11_MODULE (pustaka PKCS#11) dan "
                "SURATDESA_PKCS11_TOKEN (label token).",
                file=sys.stderr,
            )
            return 2
        pin = _secret("PIN token HSM: ", args.passphrase_stdin)
        if not pin:
            print("PIN token HSM kosong.", file=sys.stderr)
            return 2
        from engine.trust.signing import SigningError

        with transaction(session_factory(settings.database_url)) as session:
            user = get_user(session, args.user)
            try:
                enroll_hsm(session, settings, user, pin, by=_actor(session, args.by))
            except SigningError as exc:  # wrong PIN, no such token, label taken
                print(f"error: {exc}", file=sys.stderr)
                return 1
            until = f"{user.signer_not_after:%Y-%m-%d}"
            print(
                f"Kunci penandatangan {user.full_name} dibuat di token HSM "
                f"'{settings.pkcs11_token}'; sertifikat berlaku s.d. {until}."
            )
        return 0
    passphrase = _secret("Kata sandi kunci penandatangan: ", args.passphrase_stdin)
    with transaction(session_factory(settings.database_url)) as session:
        user = get_user(session, args.user)
        enroll_signer(session, settings.keys_dir, user, passphrase, by=_actor(session, args.by))
        until = f"{user.signer_not_after:%Y-%m-%d}"
        print(f"Sertifikat penandatangan untuk {user.full_name} berlaku s.d. {until}.")
    return 0


def cmd_keys_revoke_signer(args: argparse.Namespace) -> int:
    from engine.people.signers import REVOCATION_REASONS, revoke_key, revoke_serial
    from engine.people.users import get_user

    code = args.reason_code
    label = REVOCATION_REASONS.get(code, (code,))[0]
    with transaction(session_factory()) as session:
        by = _actor(session, args.by)
        if args.serial:
            revoke_serial(session, by, args.user, args.reason or "", code=code)
            print(f"Sertifikat {args.user} dicabut ({label}).")
        else:
            user = get_user(session, args.user)
            serial = revoke_key(session, by, user, args.reason or "", code=code)
            if serial is None:
                print(f"{user.username} tidak memegang sertifikat.", file=sys.stderr)
                return 1
            print(f"Sertifikat {serial} milik {user.username} dicabut ({label}).")
    print("Surat yang ditandatangani sebelum ini tetap sah.")
    return 0


def cmd_keys_renew_signer(args: argparse.Namespace) -> int:
    """A new certificate for a signer who holds one; the old one left to expire or revoked."""
    from engine.people.signers import renew
    from engine.people.users import get_user

    settings = get_settings()
    prompt = "PIN token HSM: " if args.hsm else "Kata sandi kunci penandatangan (baru): "
    secret = _secret(prompt, args.passphrase_stdin)
    with transaction(session_factory(settings.database_url)) as session:
        user = get_user(session, args.user)
        old, new = renew(
            session,
            settings,
            user,
            secret,
            by=_actor(session, args.by),
            revoke_old=args.revoke_old,
            note=args.reason or "",
            hsm=args.hsm,
        )
        until = f"{user.signer_not_after:%Y-%m-%d}"
    fate = "dicabut (diganti)" if args.revoke_old else "dibiarkan berakhir"
    print(f"Sertifikat baru {new} untuk {user.full_name} berlaku s.d. {until}.")
    print(f"Sertifikat lama {old}: {fate}; surat yang sudah ditandatangani tetap sah.")
    return 0


def cmd_keys_unlock_signer(args: argparse.Namespace) -> int:
    """Lift a signer's lock after too many wrong passphrases: by a named regency admin only."""
    from engine.people.users import get_user
    from engine.trust.signer_limit import unlock_signer

    with transaction(session_factory()) as session:
        by = _actor(session, args.by)
        user = get_user(session, args.user)
        failures = unlock_signer(session, by, user, args.reason or "")
        print(
            f"Kunci tanda tangan {user.username} dibuka oleh {by.username} "
            f"(setelah {failures} kali salah kata sandi)."
        )
    return 0


def _add_signer_commands(keys: argparse._SubParsersAction) -> None:
    """issue-signer, revoke-signer, renew-signer: the signer lifecycle (engine.people.signers)."""
    from engine.people.signers import REVOCATION_REASONS

    s = keys.add_parser("issue-signer", help="issue a passphrase-protected signer key for USER")
    s.add_argument("user")
    s.add_argument(
        "--passphrase-stdin", action="store_true", help="read the passphrase (or PIN) from stdin"
    )
    s.add_argument(
        "--hsm",
        action="store_true",
        help="generate the key on the PKCS#11 token (SURATDESA_PKCS11_MODULE/_TOKEN); "
        "the secret is the token PIN",
    )
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_keys_issue_signer)
    s = keys.add_parser(
        "revoke-signer", help="revoke USER's signer certificate (into the CRL) and drop the key"
    )
    s.add_argument("user", help="username, or with --serial a certificate serial (hex)")
    s.add_argument("--serial", action="store_true", help="USER is a certificate serial")
    s.add_argument(
        "--reason-code",
        choices=list(REVOCATION_REASONS),
        default="lainnya",
        help="why (RFC 5280 code in the CRL/OCSP): "
        + "; ".join(f"{code} = {label}" for code, (label, _flag) in REVOCATION_REASONS.items()),
    )
    s.add_argument("--reason", help="a note for the audit log (required with 'lainnya')")
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_keys_revoke_signer)
    s = keys.add_parser(
        "renew-signer",
        help="a new certificate and key for USER; the old certificate is left to expire "
        "(default) or revoked as superseded (--revoke-old)",
    )
    s.add_argument("user")
    s.add_argument("--revoke-old", action="store_true", help="revoke the old certificate now")
    s.add_argument("--reason", help="a note for the audit log")
    s.add_argument("--passphrase-stdin", action="store_true", help="read the secret from stdin")
    s.add_argument(
        "--hsm",
        action="store_true",
        help="the new key on the PKCS#11 token (a key already there is renewed there anyway)",
    )
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_keys_renew_signer)


def add_keys_commands(keys: argparse._SubParsersAction) -> None:
    """`suratdesa keys ...`: the key ceremony and signer certificates."""

    s = keys.add_parser(
        "init",
        help="development: the whole key ceremony at once; the root key goes to a separate "
        "folder (default: the keys dir's sibling <name>-root)",
    )
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("--root-dir", help="where the development root CA key is kept")
    s.add_argument("--public-url", help=PUBLIC_URL_HELP)
    s.set_defaults(func=cmd_keys_init)
    root = keys.add_parser("root", help="the offline root CA (run on the offline machine)")
    root_sub = root.add_subparsers(required=True, metavar="COMMAND")
    s = root_sub.add_parser("init", help="create the root CA key and certificate in DIR")
    s.add_argument("--dir", required=True, help="offline root folder (e.g. on a USB stick)")
    s.add_argument("--regency", default="Kabupaten Sukoharjo")
    s.set_defaults(func=cmd_keys_root_init)
    s = root_sub.add_parser("sign", help="certify the server's issuing CA request (CSR)")
    s.add_argument("--dir", required=True, help="offline root folder")
    s.add_argument("csr", help="issuing-ca.csr.pem from `keys request`")
    s.add_argument("--out", help="output (default: issuing-ca.chain.pem beside the CSR)")
    s.add_argument(
        "--public-url",
        help="the deployment's public URL: the issuing CA certificate points at the root "
        "CRL under it, and root-ca.crl is written beside the chain",
    )
    s.set_defaults(func=cmd_keys_root_sign)
    s = root_sub.add_parser("crl", help="sign the root's CRL (yearly), listing revoked CAs")
    s.add_argument("--dir", required=True, help="offline root folder")
    s.add_argument("--revoke", action="append", metavar="SERIAL", help="a revoked CA (hex)")
    s.add_argument("--out", help="also write it here (default: root-ca.crl in --dir)")
    s.set_defaults(func=cmd_keys_root_crl)
    s = keys.add_parser("request", help="server: make the issuing CA key and its CSR")
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("--regency", default="Kabupaten Sukoharjo")
    s.add_argument("--public-url", help=PUBLIC_URL_HELP)
    s.set_defaults(func=cmd_keys_request)
    s = keys.add_parser(
        "install", help="server: install the signed issuing CA and root certificate"
    )
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("certs", nargs="+", metavar="CERT", help="PEM file(s) from `keys root sign`")
    s.set_defaults(func=cmd_keys_install)
    s = keys.add_parser("install-crl", help="server: install the root CRL from `keys root crl`")
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("crl", help="root-ca.crl")
    s.set_defaults(func=cmd_keys_install_crl)
    s = keys.add_parser(
        "publication-url", help="show or set the base URL certificates give for CRL and OCSP"
    )
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("url", nargs="?", help="the public URL (kept if one is set, unless --replace)")
    s.add_argument("--replace", action="store_true")
    s.set_defaults(func=cmd_keys_publication_url)
    _add_signer_commands(keys)
    s = keys.add_parser(
        "unlock-signer",
        help="lift USER's signing lock set after too many wrong passphrases (audited)",
    )
    s.add_argument("user", help="username of the signer")
    s.add_argument(
        "--by", metavar="ADMIN", required=True, help="the regency admin account lifting the lock"
    )
    s.add_argument("--reason", help="why, e.g. how the signer was identified")
    s.set_defaults(func=cmd_keys_unlock_signer)
