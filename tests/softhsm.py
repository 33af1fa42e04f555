"""A throw-away SoftHSM2 token for tests of the PKCS#11 signing path."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pkcs11

from tests.conftest import require_tool

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "12345678"
PIN = "246810"


@contextmanager
def softhsm_token(root: Path, label: str) -> Iterator[Path]:
    """Initialise a token labelled ``label`` under ``root``; yields the SoftHSM config path.
    SoftHSM reads SOFTHSM2_CONF when the module is initialised, so the module is (re)loaded
    after the variable is set and unloaded after."""
    util = require_tool("softhsm2-util")
    if not Path(MODULE).exists():
        require_tool(MODULE)  # skips, or fails in CI, with the path in the message
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pkcs11.unload(MODULE)
    try:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield conf
    finally:
        pkcs11.unload(MODULE)
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old
