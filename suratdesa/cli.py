"""`suratdesa` command line: administration, checks and the demo. Calls the engine only."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from engine.config import get_settings, serve_on
from engine.errors import SuratDesaError
from engine.storage.db import session_factory, transaction
from suratdesa.cli_common import BY_HELP, _actor, _secret
from suratdesa.keys_cli import add_keys_commands, say_where_the_root_is
from suratdesa.letters_cli import add_letters_commands
from suratdesa.notify_cli import add_notify_commands
from suratdesa.worker_cli import add_worker_command


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.bootstrap import seed_regions
    from engine.storage.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    with transaction(session_factory(settings.database_url)) as session:
        added = seed_regions(session)
    print(f"Database up to date ({_safe_url(settings.database_url)}); {added} region rows added.")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from engine.people.users import create_user

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
    from engine.people.users import disable_user, get_user

    with transaction(session_factory()) as session:
        user = get_user(session, args.username)
        disable_user(session, _actor(session, args.by), user, args.reason)
        print(f"Pengguna {user.username} dinonaktifkan; sertifikatnya (bila ada) dicabut.")
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from engine.people.users import get_user, issue_token

    with transaction(session_factory()) as session:
        print(issue_token(session, get_user(session, args.username)))
    return 0


def cmd_residents_import(args: argparse.Namespace) -> int:
    from engine.people.residents import import_csv

    factory = session_factory()
    with factory() as session, session.begin():
        report = import_csv(session, Path(args.file), args.village, _actor(session, None))
        for warning in report.warnings:
            print(f"peringatan: {warning}", file=sys.stderr)
        if not report.ok:
            session.rollback()
            for problem in report.problems:
                print(f"{args.file}: ditolak: {problem}", file=sys.stderr)
            print(f"Tidak ada yang diimpor: {len(report.problems)} masalah.", file=sys.stderr)
            return 1
    for added in report.added:
        print(f"baru: {added}")
    for changed in report.changed:
        print(f"diperbarui: {changed}")
    print(f"Impor selesai: {report.summary()}.")
    return 0


def cmd_workflows_check(args: argparse.Namespace) -> int:
    from engine.requests.workflows import (
        WorkflowError,
        WorkflowErrors,
        load_workflow,
        load_workflows,
    )

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
    from engine.requests.workflows import workflow_json_schema

    print(json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from engine.storage.audit_checkpoints import verify_log, wib

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
    from engine.storage.audit_checkpoints import make_checkpoint

    settings = get_settings()
    cp = make_checkpoint(session_factory(settings.database_url), settings)
    if cp is None:
        print("No new checkpoint: the log is empty or its last event is already anchored.")
        return 0
    print(f"Wrote {cp.path}: event {cp.last_id}, {cp.events} events, {cp.label}.")
    return 0


def cmd_stats_refresh(args: argparse.Namespace) -> int:
    from engine.letters.statistics_rollup import catch_up

    engine = session_factory(get_settings().database_url).kw["bind"]
    done = catch_up(engine, rebuild=args.rebuild)
    until = done.settled_before.isoformat(timespec="seconds") if done.settled_before else "-"
    print(f"Statistics rollup up to {until}: {done.letters} letters, {done.handovers} hand-overs.")
    return 0


def add_stats_commands(stats: argparse._SubParsersAction) -> None:
    s = stats.add_parser(
        "refresh", help="bring the statistics rollup up to date (cron; after db upgrade)"
    )
    s.add_argument("--rebuild", action="store_true", help="recount every letter from scratch")
    s.set_defaults(func=cmd_stats_refresh)


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.trust.registry import verify_letter

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

    from engine.trust.pki import load_trust_roots
    from engine.trust.seal import SealError, load_key_list, qr_verdict

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

    serve_on(args.host, args.port)  # the printed URLs follow the port `serve` will use
    settings = get_settings()
    cmd_db_upgrade(args)
    with transaction(session_factory(settings.database_url)) as session:
        logins = seed_demo(session, settings.keys_dir, public_url=settings.public_url)
    print(f"\nDemo Surat Desa siap. Akun (kata sandi semua akun: {DEMO_PASSWORD}):")
    for username, role, village, token in logins.rows:
        print(f"  {username:22} {role:9} {village:20} token: {token}")
    print(f"Kata sandi tanda tangan (kepala desa/lurah dan sekretaris): {DEMO_PASSPHRASE}")
    say_where_the_root_is(settings.keys_dir)
    for code, niks in logins.sample_niks.items():
        print(f"Contoh NIK penduduk {code}: {', '.join(niks)}")
    for code, (nik, kk, born) in logins.sample_citizens.items():
        print(f"Coba layanan warga ({code}): NIK {nik}, No. KK {kk}, tanggal lahir {born}")
    print(f"Layanan warga (ponsel): {settings.public_url}/warga/")
    print(f"Aplikasi staf (masuk dengan akun di atas): {settings.public_url}/staf/masuk")
    print(f"API: {settings.public_url}/docs   (lihat README untuk contoh curl)")
    print(f"Portal publik (QR surat): {settings.public_url}/verify")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    serve_on(args.host, args.port)  # letters' QR codes point where this serves
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


def add_address_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--host and --port; without SURATDESA_PUBLIC_URL the public URL is http://HOST:PORT."""
    parser.add_argument("--host", default="127.0.0.1", help=what)
    parser.add_argument("--port", type=int, default=8000, help=what)


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
    add_keys_commands(keys)
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
    add_notify_commands(group("notify", "notices: deliver, status, staff contacts"))
    add_stats_commands(group("stats", "open statistics (/statistik)"))
    add_letters_commands(group("letters", "issued letters: archival maintenance"))
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
    s = sub.add_parser("demo", help="migrate, seed the demo and print logins")
    add_address_arguments(s, "the address `serve` will use (for the printed URLs)")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("serve", help="serve the API and portal")
    add_address_arguments(s, "where to serve")
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=cmd_serve)
    add_worker_command(sub)
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
