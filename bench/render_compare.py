"""Letter rendering speed: the shipped renderer (template -> markup -> fpdf2) with the
per-process font cache, against the same renderer letting fpdf2 parse the font files for
every document (a same-run baseline); ``--profile`` prints a cProfile of the shipped one.

    .venv/bin/python bench/render_compare.py [-n 60] [--kind kematian] [--paper F4]
        [--preview /tmp/letter_preview.png] [--profile]

Prints the median and 90th percentile ms per letter; each letter has its own name and URL,
so nothing is reused that a real run could not reuse.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import PROJECT_ROOT  # noqa: E402
from engine.letters.qr import qr_matrix  # noqa: E402
from engine.letters.render import (  # noqa: E402
    LetterContent,
    Person,
    SignerInfo,
    VillageInfo,
    markup_to_pdf,
    render_markup,
)

TEMPLATES = PROJECT_ROOT / "workflows" / "templates"


def sample(kind: str, i: int) -> tuple[LetterContent, str]:
    village = VillageInfo(
        "33.11.01.2001", "Grogol", "desa", "Weru", "Jl. Raya Weru-Grogol No. 12", "57562"
    )
    p = Person(
        f"Warga Percobaan {i}",
        f"33110112058{i:05d}",
        "Sukoharjo",
        date(1980, 5, 12),
        "Laki-laki",
        "Islam",
        "Kawin",
        "Petani/Pekebun",
        "Dukuh Krajan RT 002/RW 001, Desa Grogol, Kecamatan Weru",
    )
    q = replace(p, name=f"Pelapor {i}", sex="Perempuan")
    subjects = {
        "umum": {"applicant": p},
        "kematian": {"deceased": p, "reporter": q},
        "kelahiran": {"mother": q, "father": p, "reporter": p},
    }[kind]
    fields: dict[str, object] = {
        "keperluan": "Persyaratan melamar pekerjaan",
        "date_of_death": date(2026, 11, 27),
        "time_of_death": dtime(14, 30),
        "place_of_death": "Rumah",
        "cause": "Sakit",
        "child_name": f"Anak {i}",
        "child_sex": "Perempuan",
        "birth_date": date(2026, 11, 20),
        "birth_time": dtime(3, 5),
        "birth_place": "Puskesmas Weru",
    }
    content = LetterContent(
        title=f"Surat Keterangan {kind.title()}",
        number=f"470/{i:03d}/33.11.01.2001/XI/2026",
        village=village,
        signer=SignerInfo(("KEPALA DESA GROGOL",), "Sutrisno", None),
        subjects=subjects,
        subject_labels={},
        fields=fields,
        field_labels={},
        issued_on=date(2026, 11, 28),
    )
    return content, f"https://verifikasi.sukoharjokab.go.id/v/bench{i:08d}xyzABCDEFGHJK"


def timed(n: int, fn: Callable[[int], object]) -> list[float]:
    fn(-1)  # warm: the font cache, compiled template, imports
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    p90 = statistics.quantiles(ms, n=10)[-1]
    med = statistics.median(ms)
    print(
        f"{label:<34} median {med:6.1f} ms   p90 {p90:6.1f} ms   {1000 / med:5.1f} letters/s/core"
    )


def profile(n: int, fn: Callable[[int], object]) -> None:
    """cProfile ``n`` letters; print the top functions by cumulative and by own time."""
    import cProfile
    import pstats

    fn(-1)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(n):
        fn(i)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--kind", default="kematian", choices=["umum", "kematian", "kelahiran"])
    ap.add_argument("--paper", default="F4", choices=["F4", "A4"])
    ap.add_argument("--preview", default="/tmp/letter_preview.png")
    ap.add_argument("--profile", action="store_true", help="cProfile the shipped renderer")
    args = ap.parse_args()
    template = TEMPLATES / f"{args.kind}.html.j2"

    def letter(i: int, cache: bool) -> bytes:
        content, url = sample(args.kind, i)
        markup = render_markup(template, content, verify_url=url, draft=False)
        return markup_to_pdf(
            markup,
            title=content.title,
            verify_url=url,
            paper=args.paper,
            base_dir=TEMPLATES,
            font_cache=cache,
        )

    if args.profile:
        profile(args.n, lambda i: letter(i, True))
        return
    print(f"{args.n} x {args.kind} letter, {args.paper}, fpdf2 renderer")
    # Interleave nothing: each variant runs its own batch, cached first then baseline.
    report("font cache (shipped)", timed(args.n, lambda i: letter(i, True)))
    report("no font cache (fpdf2 add_font)", timed(args.n, lambda i: letter(i, False)))
    content, url = sample(args.kind, 0)
    report(
        "  of which: Jinja template",
        timed(args.n, lambda i: render_markup(template, content, verify_url=url, draft=False)),
    )
    report("  of which: QR matrix (best mask)", timed(args.n, lambda i: qr_matrix(f"{url}{i}")))

    pdf = letter(0, True)
    print(f"PDF size: {len(pdf) / 1024:.1f} KiB")
    if args.preview and shutil.which("pdftoppm"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "letter.pdf"
            path.write_bytes(pdf)
            stem = Path(args.preview).with_suffix("")
            subprocess.run(
                [
                    "pdftoppm",
                    "-png",
                    "-r",
                    "60",
                    "-f",
                    "1",
                    "-l",
                    "1",
                    "-singlefile",
                    str(path),
                    str(stem),
                ],
                check=True,
            )
        print(f"page 1 preview: {stem}.png")


if __name__ == "__main__":
    main()
