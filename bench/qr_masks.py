"""QR mask penalties over letter-like QR texts: why engine.letters.qr applies one fixed mask.

For N texts shaped as issuing makes them (public URL, 160-bit code, seal), prints each mask's
median and worst penalty (the QR standard's four rules, as the qrcode library scores them), the
best-of-eight's, how often the fixed mask's penalty passes PATHOLOGICAL_PENALTY (then all eight
are tried), and the time per QR matrix with the fixed rule and with all eight masks.

    .venv/bin/python bench/qr_masks.py [-n 150]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qrcode  # noqa: E402
from qrcode import util  # noqa: E402
from qrcode.constants import ERROR_CORRECT_M  # noqa: E402

from engine.letters.qr import FAST_MASK, PATHOLOGICAL_PER_MODULE, qr_matrix  # noqa: E402


def letter_text(seal_bytes: int) -> str:
    code = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    seal = base64.b32encode(secrets.token_bytes(seal_bytes)).decode().rstrip("=")
    return f"HTTPS://VERIFIKASI.SUKOHARJOKAB.GO.ID/V/{code}/{seal}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=150)
    ap.add_argument("--seal-bytes", type=int, default=220, help="220: a seal with two facts")
    args = ap.parse_args()
    n = args.n
    texts = [letter_text(args.seal_bytes) for _ in range(n)]
    penalties: dict[int, list[int]] = {m: [] for m in range(8)}
    for text in texts:
        qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
        qr.add_data(text)
        qr.best_fit()
        for mask in range(8):
            qr.makeImpl(False, mask)
            penalties[mask].append(util.lost_point(qr.modules))
    best = [min(p[i] for p in penalties.values()) for i in range(n)]
    print(f"{n} letter-like QR texts ({len(texts[0])} characters, version {qr.version}):")
    for mask, values in penalties.items():
        mark = "  <- FAST_MASK" if mask == FAST_MASK else ""
        med = statistics.median(values)
        print(f"  mask {mask}: median {med:6.0f}  worst {max(values):5d}{mark}")
    print(f"  best of 8: median {statistics.median(best):6.0f}  worst {max(best):5d}")
    modules = qr.modules_count**2
    print(f"  best of 8, worst per module: {max(best) / modules:.3f}")
    over = sum(v > PATHOLOGICAL_PER_MODULE * modules for v in penalties[FAST_MASK])
    print(f"  fixed mask over {PATHOLOGICAL_PER_MODULE}/module (full search): {over} of {n}")
    for rule in ("fast", "best"):
        t = time.perf_counter()
        for text in texts[:50]:
            qr_matrix(text, mask=rule)
        print(f"  qr_matrix, mask={rule}: {(time.perf_counter() - t) / 50 * 1000:.1f} ms per QR")


if __name__ == "__main__":
    main()
