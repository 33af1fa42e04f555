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


def cmd_keys_init(args: argparse.Namespace) -> int:
    from engine.pki import init_pki

    paths = init_pki(get_settings().keys_dir)
    print(f"PKI ready in {paths.keys_dir}: root CA, issuing CA, TSA.")
    return 0


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
                enroll_hsm(session, settings, user, pin)
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
        enroll_signer(session, settings.keys_dir, user, passphrase)
        until = f"{user.signer_not_after:%Y-%m-%d}"
        print(f"Sertifikat penandatangan untuk {user.full_name} berlaku s.d. {until}.")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from engine.users import create_user

    password = _secret("Kata sandi: ", args.password_stdin) if args.password else None
    with transaction(session_factory()) as session:
        user = create_user(
            session,
            username=args.username,
            full_name=args.name,
            role=args.role,
            village_code=args.village,
            nip=args.nip,
            password=password,
        )
        print(f"Pengguna {user.username} ({user.role}) dibuat.")
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
    from engine.audit import verify_chain

    with transaction(session_factory()) as session:
        report = verify_chain(session)
    if report.ok:
        print(f"Audit log intact: {report.events} events, chain verified.")
        return 0
    print(f"AUDIT LOG BROKEN after {report.events} good events: {report.problem}", file=sys.stderr)
    return 1


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.pki import load_trust_roots
    from engine.registry import registry_lookup
    from engine.verification import verify_pdf

    settings = get_settings()
    data = Path(args.file).read_bytes()
    factory = session_factory(settings.database_url)
    verdict = verify_pdf(
        data,
        trust_roots=load_trust_roots(settings.keys_dir),
        registry_lookup=registry_lookup(factory),
    )
    print(verdict.status)
    for reason in verdict.reasons:
        print(f"  - {reason}")
    if args.json:
        print(json.dumps(dataclasses.asdict(verdict), indent=2, ensure_ascii=False, default=str))
    return 0 if verdict.valid else 1


def cmd_verify_qr(args: argparse.Namespace) -> int:
    """Check a scanned QR text offline against a saved key list (from /pki/seal-keys.cose)."""
    from cryptography import x509

    from engine.pki import load_trust_roots
    from engine.seal import SealError, load_key_list, parse_qr, verify_seal

    if args.root:
        roots = x509.load_pem_x509_certificates(Path(args.root).read_bytes())
    else:
        roots = load_trust_roots(get_settings().keys_dir)
    try:
        keys = load_key_list(Path(args.keys).read_bytes(), roots)
        qr = parse_qr(args.text)
        if qr.seal is None:
            print("TIDAK ADA SEGEL: QR ini hanya berisi alamat; periksa secara daring.")
            return 1
        fields = verify_seal(qr.seal, keys)
    except SealError as e:
        print(f"TIDAK SAH: {e}")
        return 1
    print("SEGEL SAH (pemeriksaan luring; status cabut/ganti hanya terlihat daring)")
    print(f"  Nomor        : {fields.number}")
    print(f"  Tanggal      : {fields.issued_on:%d-%m-%Y}")
    print(f"  Nama         : {fields.subject_name}")
    print(f"  Kode         : {qr.code}")
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
    for code, niks in logins.sample_niks.items():
        print(f"Contoh NIK penduduk {code}: {', '.join(niks)}")
    print(f"Aplikasi staf (masuk dengan akun di atas): {settings.public_url}/staf/masuk")
    print(f"API: {settings.public_url}/docs   (lihat README untuk contoh curl)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "suratdesa.web:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
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
    keys = group("keys", "PKI: root CA, issuing CA, TSA, signer certificates")
    keys.add_parser("init", help="create the development PKI if missing").set_defaults(
        func=cmd_keys_init
    )
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
    s.set_defaults(func=cmd_keys_issue_signer)
    users = group("users", "staff accounts")
    s = users.add_parser("create", help="create a user")
    s.add_argument("username")
    s.add_argument("--name", required=True)
    s.add_argument("--role", required=True)
    s.add_argument("--village", help="village code, e.g. 33.11.01.2001 (not for admin)")
    s.add_argument("--nip")
    s.add_argument("--password", action="store_true", help="ask for a password")
    s.add_argument("--password-stdin", action="store_true")
    s.set_defaults(func=cmd_users_create)
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
    au.add_parser("verify", help="check the hash chain").set_defaults(func=cmd_audit_verify)
    s = sub.add_parser("verify", help="verify a signed letter PDF offline")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)
    s = sub.add_parser("verify-qr", help="check a scanned QR text offline (seal + key list)")
    s.add_argument("text")
    s.add_argument("--keys", required=True, help="key list saved from /pki/seal-keys.cose")
    s.add_argument("--root", help="trusted root CA PEM (default: the configured keys dir)")
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
