"""`suratdesa` command line: administration, checks and the demo. Calls the engine only."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from pathlib import Path

from engine.config import get_settings
from engine.db import session_factory, transaction
from engine.errors import SuratDesaError


def _secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.bootstrap import seed_regions
    from engine.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    with transaction(session_factory(settings.database_url)) as session:
        added = seed_regions(session)
    print(f"Database up to date ({_safe_url(settings.database_url)}); {added} region rows added.")
    return 0


def _pki_command(func):
    """Key commands report a PkiError (missing, mismatched or refused key material) plainly."""

    def run(args: argparse.Namespace) -> int:
        from engine.pki import PkiError

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
    from engine import pki

    keys_dir = _server_keys_dir(args)
    root_dir = Path(args.root_dir) if args.root_dir else pki.default_root_dir(keys_dir)
    moved = pki.has_legacy_root_key(keys_dir)
    paths = pki.init_pki(keys_dir, root_dir=root_dir)
    print(f"PKI ready in {paths.keys_dir}: issuing CA, TSA and seal keys, root certificate.")
    if moved:
        print(f"Moved the root CA key an older version kept in {keys_dir} to {root_dir}.")
    if pki.root_paths(root_dir).key.exists():
        print(
            f"DEVELOPMENT ONLY: the root CA private key is in {root_dir}, outside the server "
            "folder. In production the root is made offline: see docs/pki.md."
        )
    return 0


def _say_where_the_root_is(keys_dir: Path) -> None:
    from engine import pki

    root_dir = pki.default_root_dir(keys_dir)
    if pki.root_paths(root_dir).key.exists():
        print(
            f"Kunci: server {keys_dir} (tanpa kunci root CA); kunci root CA pengembangan "
            f"disimpan terpisah di {root_dir}. Produksi: root CA dibuat luring (docs/pki.md)."
        )


@_pki_command
def cmd_keys_root_init(args: argparse.Namespace) -> int:
    from engine import pki

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
    from engine import pki

    keys_dir = _server_keys_dir(args)
    csr_path = pki.request_issuing_ca(keys_dir, regency=args.regency)
    csr = pki.load_csr(csr_path.read_bytes())
    print(f"Issuing CA key in {keys_dir}; its certificate request: {csr_path}")
    print(f"  subject     : {csr.subject.rfc4514_string()}")
    print(f"  key SHA-256 : {pki.fingerprint(csr.public_key())}")
    print(
        "Copy the request to the offline machine and run `suratdesa keys root sign` there; "
        "check that it shows the same key SHA-256."
    )
    return 0


@_pki_command
def cmd_keys_root_sign(args: argparse.Namespace) -> int:
    from engine import pki

    csr_path = Path(args.csr)
    csr = pki.load_csr(csr_path.read_bytes())
    cert = pki.sign_issuing_csr(Path(args.dir), csr)
    root = pki.load_root_cert_file(pki.root_paths(Path(args.dir)).cert)
    out = Path(args.out) if args.out else csr_path.with_name("issuing-ca.chain.pem")
    pki.write_chain(out, [cert, root])
    print(f"Signed the issuing CA: {out} (its certificate, then the root certificate).")
    print(f"  subject     : {cert.subject.rfc4514_string()}")
    print(f"  key SHA-256 : {pki.fingerprint(cert.public_key())}")
    print(f"  valid until : {cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  root SHA-256: {pki.fingerprint(root)}")
    print("Copy the file to the server and run `suratdesa keys install` there.")
    return 0


@_pki_command
def cmd_keys_install(args: argparse.Namespace) -> int:
    from cryptography import x509

    from engine import pki

    keys_dir = _server_keys_dir(args)
    certs = [c for f in args.certs for c in x509.load_pem_x509_certificates(Path(f).read_bytes())]
    paths = pki.install_issuing_ca(keys_dir, certs)
    root = pki.load_root_ca(keys_dir)
    print(f"Installed in {paths.keys_dir}: root certificate, issuing CA; TSA and seal keys ready.")
    print(f"  root SHA-256: {pki.fingerprint(root)}  (must match `keys root init`)")
    return 0


def _actor(session, by: str | None):
    """Who a CLI write is recorded as in the audit log: the admin account named by --by, or
    else the system actor "cli:<os user>" (the login of whoever runs the command)."""
    from engine.errors import InvalidInput
    from engine.users import Actor, get_user

    if by:
        user = get_user(session, by)
        if user.role != "admin" or not user.active:
            raise InvalidInput(f"--by {by}: bukan akun admin kabupaten yang aktif.")
        return Actor.of(user)
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = "unknown"
    return Actor.system(f"cli:{os_user}")


BY_HELP = (
    'the regency admin account doing this, recorded in the audit log (default: "cli:<os user>")'
)


def cmd_keys_issue_signer(args: argparse.Namespace) -> int:
    from engine.bootstrap import enroll_hsm, enroll_signer
    from engine.users import get_user

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
        from engine.signing import SigningError

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
    if len(passphrase) < 8:
        print("Kata sandi minimal 8 karakter.", file=sys.stderr)
        return 2
    with transaction(session_factory(settings.database_url)) as session:
        user = get_user(session, args.user)
        enroll_signer(session, settings.keys_dir, user, passphrase, by=_actor(session, args.by))
        until = f"{user.signer_not_after:%Y-%m-%d}"
        print(f"Sertifikat penandatangan untuk {user.full_name} berlaku s.d. {until}.")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from engine.users import create_user

    password = _secret("Kata sandi: ", args.password_stdin) if args.password else None
    with transaction(session_factory()) as session:
        user = create_user(
            session,
            by=_actor(session, args.by),
            username=args.username,
            full_name=args.name,
            role=args.role,
            village_code=args.village,
            nip=args.nip,
            password=password,
        )
        print(f"Pengguna {user.username} ({user.role}) dibuat.")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from engine.users import disable_user, get_user

    with transaction(session_factory()) as session:
        user = get_user(session, args.username)
        disable_user(session, _actor(session, args.by), user, args.reason)
        print(f"Pengguna {user.username} dinonaktifkan; sertifikatnya (bila ada) dicabut.")
    return 0


def cmd_keys_revoke_signer(args: argparse.Namespace) -> int:
    from engine.signers import revoke_key, revoke_serial
    from engine.users import get_user

    with transaction(session_factory()) as session:
        by = _actor(session, args.by)
        if args.serial:
            revoke_serial(session, by, args.user, args.reason)
            print(f"Sertifikat {args.user} dicabut.")
        else:
            user = get_user(session, args.user)
            serial = revoke_key(session, by, user, args.reason)
            if serial is None:
                print(f"{user.username} tidak memegang sertifikat.", file=sys.stderr)
                return 1
            print(f"Sertifikat {serial} milik {user.username} dicabut.")
    return 0


def cmd_keys_unlock_signer(args: argparse.Namespace) -> int:
    """Lift a signer's lock after too many wrong passphrases: by a named regency admin only."""
    from engine.signer_limit import unlock_signer
    from engine.users import get_user

    with transaction(session_factory()) as session:
        by = _actor(session, args.by)
        user = get_user(session, args.user)
        failures = unlock_signer(session, by, user, args.reason or "")
        print(
            f"Kunci tanda tangan {user.username} dibuka oleh {by.username} "
            f"(setelah {failures} kali salah kata sandi)."
        )
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from engine.users import get_user, issue_token

    with transaction(session_factory()) as session:
        print(issue_token(session, get_user(session, args.username)))
    return 0


def cmd_residents_import(args: argparse.Namespace) -> int:
    from engine.residents import import_csv

    factory = session_factory()
    with factory() as session, session.begin():
        report = import_csv(session, Path(args.file), args.village)
        for warning in report.warnings:
            print(f"peringatan: {warning}", file=sys.stderr)
        if not report.ok:
            session.rollback()
            for problem in report.problems:
                print(f"{args.file}: {problem}", file=sys.stderr)
            print(f"Tidak ada yang diimpor: {len(report.problems)} masalah.", file=sys.stderr)
            return 1
    print(f"Impor selesai: {report.created} baru, {report.updated} diperbarui.")
    return 0


def cmd_workflows_check(args: argparse.Namespace) -> int:
    from engine.workflows import WorkflowError, WorkflowErrors, load_workflow, load_workflows

    path = Path(args.path) if args.path else get_settings().workflows_dir
    try:
        specs = load_workflows(path) if path.is_dir() else {"": load_workflow(path)}
    except WorkflowErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    except WorkflowError as exc:
        print(exc, file=sys.stderr)
        return 1
    for spec in specs.values():
        print(f"ok  {spec.id} v{spec.version}  sha256={spec.sha256[:16]}  ({spec.source_path})")
    return 0


def cmd_workflows_schema(args: argparse.Namespace) -> int:
    from engine.workflows import workflow_json_schema

    print(json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from engine.audit import verify_log, wib

    settings = get_settings()
    report = verify_log(session_factory(settings.database_url), settings)
    latest = report.latest
    if report.ok:
        print(f"Audit log intact: {report.chain.events} events, chain verified.")
        if latest is not None:
            stamped = f", timestamped {wib(report.timestamp)}" if report.timestamp else ""
            print(
                f"Matches {report.checkpoints} checkpoint(s); newest {latest.label}: "
                f"event {latest.last_id}, {latest.events} events, signed{stamped}."
            )
        else:
            print(
                f"warning: no checkpoint in {settings.audit_dir}: a wipe of the whole log would "
                "go unnoticed. Make one with `suratdesa audit checkpoint`.",
                file=sys.stderr,
            )
        return 0
    print(f"AUDIT LOG NOT INTACT ({report.chain.events} events in the chain):", file=sys.stderr)
    for problem in report.problems:
        print(f"- {problem}", file=sys.stderr)
    return 1


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from engine.audit import make_checkpoint

    settings = get_settings()
    cp = make_checkpoint(session_factory(settings.database_url), settings)
    if cp is None:
        print("No new checkpoint: the log is empty or its last event is already anchored.")
        return 0
    print(f"Wrote {cp.path}: event {cp.last_id}, {cp.events} events, {cp.label}.")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.registry import verify_letter

    settings = get_settings()
    data = Path(args.file).read_bytes()
    verdict = verify_letter(data, session_factory(settings.database_url), settings.keys_dir)
    print(verdict.status)
    for reason in verdict.reasons:
        print(f"  - {reason}")
    if args.json:
        print(json.dumps(dataclasses.asdict(verdict), indent=2, ensure_ascii=False, default=str))
    return 0 if verdict.valid else 1


def cmd_verify_qr(args: argparse.Namespace) -> int:
    """Check a scanned QR text offline against a saved key list (from /pki/seal-keys.cose):
    the engine's one seal verdict, under the deployment's public URL."""
    from cryptography import x509

    from engine.pki import load_trust_roots
    from engine.seal import SealError, load_key_list, qr_verdict

    if args.root:
        roots = x509.load_pem_x509_certificates(Path(args.root).read_bytes())
    else:
        roots = load_trust_roots(get_settings().keys_dir)
    base_url = args.base_url or get_settings().public_url
    try:
        keys = load_key_list(Path(args.keys).read_bytes(), roots)
    except SealError as e:
        print(f"TIDAK SAH: {e}")
        return 1
    verdict = qr_verdict(args.text, keys, base_url=base_url)
    if verdict.no_seal:
        print(f"TIDAK ADA SEGEL: {verdict.reason}.")
        return 1
    if not verdict.valid or verdict.fields is None:
        print(f"SEGEL TIDAK SAH: {verdict.reason}.")
        print("  Anggap surat kertas ini mencurigakan; tanyakan ke kantor desa penerbitnya.")
        return 1
    fields = verdict.fields
    print("SEGEL SAH (pemeriksaan luring; status cabut/ganti hanya terlihat daring)")
    print(f"  Nomor        : {fields.number}")
    print(f"  Tanggal      : {fields.issued_on:%d-%m-%Y}")
    for label, value in fields.facts:
        print(f"  {label:<13}: {value}")
    print(f"  Kode         : {verdict.code}")
    print(f"  Digest isi   : {fields.content_digest.hex()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.bootstrap import DEMO_PASSPHRASE, DEMO_PASSWORD, seed_demo

    settings = get_settings()
    cmd_db_upgrade(args)
    with transaction(session_factory(settings.database_url)) as session:
        logins = seed_demo(session, settings.keys_dir)
    print(f"\nDemo Surat Desa siap. Akun (kata sandi semua akun: {DEMO_PASSWORD}):")
    for username, role, village, token in logins.rows:
        print(f"  {username:22} {role:9} {village:20} token: {token}")
    print(f"Kata sandi tanda tangan kepala desa/lurah: {DEMO_PASSPHRASE}")
    _say_where_the_root_is(settings.keys_dir)
    for code, niks in logins.sample_niks.items():
        print(f"Contoh NIK penduduk {code}: {', '.join(niks)}")
    print(f"Aplikasi staf (masuk dengan akun di atas): {settings.public_url}/staf/masuk")
    print(f"API: {settings.public_url}/docs   (lihat README untuk contoh curl)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # X-Forwarded-* are honoured by the app (suratdesa.security) from SURATDESA_TRUSTED_PROXIES
    # only; uvicorn's own handling would trust any loopback peer.
    uvicorn.run(
        "suratdesa.web:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        server_header=False,
    )
    return 0


def _safe_url(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="suratdesa", description="Surat Desa: layanan surat desa")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    def group(name: str, help: str) -> argparse._SubParsersAction:
        return sub.add_parser(name, help=help).add_subparsers(required=True, metavar="COMMAND")

    db = group("db", "database")
    db.add_parser("upgrade", help="apply migrations and seed the regions").set_defaults(
        func=cmd_db_upgrade
    )
    keys = group("keys", "PKI: root CA, issuing CA, TSA, signer certificates (docs/pki.md)")
    s = keys.add_parser(
        "init",
        help="development: the whole key ceremony at once; the root key goes to a separate "
        "folder (default: the keys dir's sibling <name>-root)",
    )
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("--root-dir", help="where the development root CA key is kept")
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
    s.set_defaults(func=cmd_keys_root_sign)
    s = keys.add_parser("request", help="server: make the issuing CA key and its CSR")
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("--regency", default="Kabupaten Sukoharjo")
    s.set_defaults(func=cmd_keys_request)
    s = keys.add_parser(
        "install", help="server: install the signed issuing CA and root certificate"
    )
    s.add_argument("--keys-dir", help="server key folder (default: SURATDESA_KEYS_DIR)")
    s.add_argument("certs", nargs="+", metavar="CERT", help="PEM file(s) from `keys root sign`")
    s.set_defaults(func=cmd_keys_install)
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
    s.add_argument("--reason", required=True)
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_keys_revoke_signer)
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
    users = group("users", "staff accounts")
    s = users.add_parser("create", help="create a user")
    s.add_argument("username")
    s.add_argument("--name", required=True)
    s.add_argument("--role", required=True)
    s.add_argument("--village", help="village code, e.g. 33.11.01.2001 (not for admin)")
    s.add_argument("--nip")
    s.add_argument("--password", action="store_true", help="ask for a password")
    s.add_argument("--password-stdin", action="store_true")
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_users_create)
    s = users.add_parser(
        "disable", help="disable USERNAME: no sign-in, tokens and signer certificate revoked"
    )
    s.add_argument("username")
    s.add_argument("--reason", required=True)
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_users_disable)
    s = users.add_parser("token", help="print a new API token for USERNAME")
    s.add_argument("username")
    s.set_defaults(func=cmd_users_token)
    res = group("residents", "resident registry")
    s = res.add_parser("import", help="import a CSV, all or nothing")
    s.add_argument("file")
    s.add_argument("--village", required=True)
    s.set_defaults(func=cmd_residents_import)
    wf = group("workflows", "letter types")
    s = wf.add_parser("check", help="validate workflow YAML files")
    s.add_argument("path", nargs="?")
    s.set_defaults(func=cmd_workflows_check)
    wf.add_parser("schema", help="print the JSON Schema for editors").set_defaults(
        func=cmd_workflows_schema
    )
    au = group("audit", "audit log")
    au.add_parser(
        "verify", help="check the hash chain against the signed checkpoints"
    ).set_defaults(func=cmd_audit_verify)
    au.add_parser(
        "checkpoint",
        help="anchor the chain: a signed, timestamped checkpoint file in SURATDESA_AUDIT_DIR",
    ).set_defaults(func=cmd_audit_checkpoint)
    s = sub.add_parser("verify", help="verify a signed letter PDF offline")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)
    s = sub.add_parser("verify-qr", help="check a scanned QR text offline (seal + key list)")
    s.add_argument("text")
    s.add_argument("--keys", required=True, help="key list saved from /pki/seal-keys.cose")
    s.add_argument("--root", help="trusted root CA PEM (default: the configured keys dir)")
    s.add_argument(
        "--base-url",
        help="the public URL the QR must point under (default: SURATDESA_PUBLIC_URL)",
    )
    s.set_defaults(func=cmd_verify_qr)
    sub.add_parser("demo", help="migrate, seed the demo and print logins").set_defaults(
        func=cmd_demo
    )
    s = sub.add_parser("serve", help="serve the API and portal")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SuratDesaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
