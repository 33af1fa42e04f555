"""What the command groups share: reading a secret, and who a write is recorded as."""

from __future__ import annotations

import getpass
import sys


def _secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def _actor(session, by: str | None):
    """Who a CLI write is recorded as in the audit log: the admin account named by --by, or
    else the system actor "cli:<os user>" (the login of whoever runs the command)."""
    from engine.errors import InvalidInput
    from engine.people.users import Actor, get_user

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
