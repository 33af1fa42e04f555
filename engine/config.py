"""Settings read from the environment. The one place: no other module reads `os.environ`, so
every face sees the same values (README, "Settings", lists each one)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str
    public_url: str
    keys_dir: Path
    workflows_dir: Path
    paper: str  # "F4" (office default, 215 x 330 mm) or "A4"
    tsa_url: str | None  # None: the in-process development TSA under keys_dir
    # Signs the staff app's session cookies; shared by every app process (SURATDESA_SECRET_KEY).
    secret_key: str = ""
    # A head's key on a PKCS#11 token (engine.trust.hsm): the module library and the token label.
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    # Audit log checkpoints, written outside the database (SURATDESA_AUDIT_DIR) and published
    # under /pki/audit/. The served app makes one when the newest is older than this many hours
    # (SURATDESA_AUDIT_CHECKPOINT_HOURS, 24 from the environment; 0 here: off unless configured).
    audit_dir: Path = PROJECT_ROOT / "var" / "audit"
    audit_checkpoint_hours: float = 0
    # The public portal serves the full signed PDF at /v/{code}/surat.pdf only when the
    # deployment chooses it (SURATDESA_PUBLIC_PDF=1; off by default: the PDF carries the
    # unmasked NIK, birth date and address). Never for revoked or replaced letters.
    public_pdf: bool = False
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (SURATDESA_TRUSTED_PROXIES: comma-separated IP addresses and CIDR networks; none by
    # default). From any other peer the headers are ignored: the peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Per-address limits of the public portal, requests per minute: the QR page /v/{code}
    # (SURATDESA_RATE_V) and the upload check /verify (SURATDESA_RATE_VERIFY).
    rate_v_per_minute: int = 120
    rate_verify_per_minute: int = 20
    # The sandboxed workers that check uploaded PDFs (verify_portal.worker): how many per
    # process (SURATDESA_VERIFY_WORKERS), the time (SURATDESA_VERIFY_TIMEOUT, seconds) and
    # memory (SURATDESA_VERIFY_MEMORY_MB) one check may take before its worker is killed.
    verify_workers: int = 2
    verify_timeout_seconds: float = 20.0
    verify_memory_mb: int = 1024
    # How many argon2 hashes one process runs at once (SURATDESA_PASSWORD_HASH_THREADS;
    # default half the CPU cores, at least 1), so a burst of sign-ins leaves cores for pages.
    password_hash_threads: int = field(default_factory=lambda: default_password_hash_threads())
    # Unfinished online requests one resident (NIK) may have at once (SURATDESA_CITIZEN_OPEN_LIMIT),
    # so a flood of citizen requests cannot push the office's work out of view.
    citizen_open_limit: int = 3
    # Notices (engine.notify). E-mail over SMTP: off unless SURATDESA_SMTP_HOST is set; port
    # (SURATDESA_SMTP_PORT, 25), sender (SURATDESA_SMTP_FROM, required with a host), STARTTLS
    # (SURATDESA_SMTP_STARTTLS=1) and login (SURATDESA_SMTP_USER / SURATDESA_SMTP_PASSWORD).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    # The messaging gateway (WhatsApp/SMS): JSON POSTs signed with HMAC-SHA256 under the shared
    # secret (SURATDESA_NOTIFY_WEBHOOK_URL / SURATDESA_NOTIFY_WEBHOOK_SECRET). https only;
    # http only to 127.0.0.1 or [::1] (a gateway on the same machine, tests).
    notify_webhook_url: str | None = None
    notify_webhook_secret: str = ""
    # Delivery: attempts before a notice is marked failed (SURATDESA_NOTIFY_MAX_ATTEMPTS), the
    # first retry's delay in seconds, doubling each time up to an hour
    # (SURATDESA_NOTIFY_RETRY_SECONDS), whether the web process runs a dispatcher
    # (SURATDESA_NOTIFY_DISPATCH=0 when `suratdesa notify run --loop` does it elsewhere) and
    # how often it looks for due notices besides being woken by commits
    # (SURATDESA_NOTIFY_POLL_SECONDS).
    notify_max_attempts: int = 8
    notify_retry_seconds: float = 30.0
    notify_dispatch: bool = True
    notify_poll_seconds: float = 10.0
    # Processes that render and sign one batch's letters (engine.letters.make_pool): 1 in the
    # web process unless SURATDESA_SIGN_PROCESSES says more; `suratdesa worker` uses every
    # core unless --sign-processes says otherwise.
    sign_processes: int = 1

    @property
    def https(self) -> bool:
        """Served to the public over HTTPS: cookies are then marked Secure."""
        return self.public_url.lower().startswith("https://")


def get_settings() -> Settings:
    default_db = f"sqlite:///{PROJECT_ROOT / 'var' / 'suratdesa.db'}"
    paper = os.environ.get("SURATDESA_PAPER", "F4").upper()
    if paper not in ("F4", "A4"):
        raise ValueError(f"SURATDESA_PAPER must be F4 or A4, not {paper!r}")
    return Settings(
        database_url=os.environ.get("SURATDESA_DATABASE_URL", default_db),
        public_url=os.environ.get("SURATDESA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        keys_dir=Path(os.environ.get("SURATDESA_KEYS_DIR", PROJECT_ROOT / "keys" / "dev")),
        workflows_dir=Path(os.environ.get("SURATDESA_WORKFLOWS_DIR", PROJECT_ROOT / "workflows")),
        paper=paper,
        tsa_url=os.environ.get("SURATDESA_TSA_URL") or None,
        secret_key=os.environ.get("SURATDESA_SECRET_KEY") or _dev_secret_key(),
        pkcs11_module=os.environ.get("SURATDESA_PKCS11_MODULE") or None,
        pkcs11_token=os.environ.get("SURATDESA_PKCS11_TOKEN") or None,
        audit_dir=Path(os.environ.get("SURATDESA_AUDIT_DIR") or PROJECT_ROOT / "var" / "audit"),
        audit_checkpoint_hours=float(os.environ.get("SURATDESA_AUDIT_CHECKPOINT_HOURS") or 24),
        public_pdf=_flag("SURATDESA_PUBLIC_PDF"),
        trusted_proxies=parse_trusted_proxies(os.environ.get("SURATDESA_TRUSTED_PROXIES", "")),
        rate_v_per_minute=_number("SURATDESA_RATE_V", int, 120),
        rate_verify_per_minute=_number("SURATDESA_RATE_VERIFY", int, 20),
        verify_workers=_number("SURATDESA_VERIFY_WORKERS", int, 2),
        verify_timeout_seconds=_number("SURATDESA_VERIFY_TIMEOUT", float, 20.0),
        verify_memory_mb=_number("SURATDESA_VERIFY_MEMORY_MB", int, 1024),
        citizen_open_limit=max(1, _number("SURATDESA_CITIZEN_OPEN_LIMIT", int, 3)),
        password_hash_threads=max(
            1, _number("SURATDESA_PASSWORD_HASH_THREADS", int, default_password_hash_threads())
        ),
        sign_processes=max(1, _number("SURATDESA_SIGN_PROCESSES", int, 1)),
        **_notify_settings(),
    )


def _notify_settings() -> dict:
    """The notice transports and delivery settings (engine.notify), checked here."""
    smtp_host = os.environ.get("SURATDESA_SMTP_HOST") or None
    smtp_from = os.environ.get("SURATDESA_SMTP_FROM", "").strip()
    if smtp_host and not smtp_from:
        raise ValueError("SURATDESA_SMTP_FROM is required when SURATDESA_SMTP_HOST is set")
    webhook_url = os.environ.get("SURATDESA_NOTIFY_WEBHOOK_URL") or None
    webhook_secret = os.environ.get("SURATDESA_NOTIFY_WEBHOOK_SECRET", "")
    if webhook_url:
        check_webhook_url(webhook_url)
        if len(webhook_secret) < 16:
            raise ValueError(
                "SURATDESA_NOTIFY_WEBHOOK_SECRET (at least 16 characters) is required "
                "when SURATDESA_NOTIFY_WEBHOOK_URL is set"
            )
    return {
        "smtp_host": smtp_host,
        "smtp_port": _number("SURATDESA_SMTP_PORT", int, 25),
        "smtp_from": smtp_from,
        "smtp_starttls": _flag("SURATDESA_SMTP_STARTTLS"),
        "smtp_user": os.environ.get("SURATDESA_SMTP_USER") or None,
        "smtp_password": os.environ.get("SURATDESA_SMTP_PASSWORD") or None,
        "notify_webhook_url": webhook_url,
        "notify_webhook_secret": webhook_secret,
        "notify_max_attempts": max(1, _number("SURATDESA_NOTIFY_MAX_ATTEMPTS", int, 8)),
        "notify_retry_seconds": _number("SURATDESA_NOTIFY_RETRY_SECONDS", float, 30.0),
        "notify_dispatch": "SURATDESA_NOTIFY_DISPATCH" not in os.environ
        or _flag("SURATDESA_NOTIFY_DISPATCH"),
        "notify_poll_seconds": _number("SURATDESA_NOTIFY_POLL_SECONDS", float, 10.0),
    }


def check_webhook_url(url: str) -> None:
    """https to any host; plain http only to a loopback address (127.0.0.1, [::1]): notices
    carry names of letter types and villages and the gateway must be able to trust the sender,
    so they never cross a network unencrypted."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1"):
        return
    raise ValueError(
        f"SURATDESA_NOTIFY_WEBHOOK_URL must be https:// (http:// only to 127.0.0.1): {url!r}"
    )


def _number(name: str, kind: type[int] | type[float], default: int | float):
    """A numeric setting; unset or empty: the default."""
    value = os.environ.get(name)
    return kind(value) if value else default


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """IP addresses and CIDR networks, comma-separated; a bad entry is refused here rather than
    silently never matching."""
    import ipaddress

    entries = tuple(item.strip() for item in value.split(",") if item.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"SURATDESA_TRUSTED_PROXIES: not an IP address or network: {entry!r}"
            ) from None
    return entries


def default_password_hash_threads() -> int:
    """Half the CPU cores, at least 1."""
    return max(1, (os.cpu_count() or 2) // 2)


def _flag(name: str) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (or unset: off)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 0 or 1, not {value!r}")


def _dev_secret_key() -> str:
    """Development only: a random key kept in var/secret_key so restarts keep sessions."""
    import secrets

    path = PROJECT_ROOT / "var" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def serve_on(host: str, port: int) -> str:
    """`suratdesa serve` and `suratdesa demo`: unless SURATDESA_PUBLIC_URL is set, the public
    URL (printed by the demo, embedded in letters' QR codes and verify links) follows the
    address served on, http://HOST:PORT, so `make demo PORT=8101` makes QR codes that open.
    Set in this process's environment, so every app process (workers too) reads the same
    value through get_settings. Returns the public URL."""
    if not os.environ.get("SURATDESA_PUBLIC_URL"):
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        os.environ["SURATDESA_PUBLIC_URL"] = f"http://{shown}:{port}"
    return os.environ["SURATDESA_PUBLIC_URL"].rstrip("/")
