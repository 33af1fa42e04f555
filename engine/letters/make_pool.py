"""Rendering and signing letters, in this process or on every core of the machine.

A letter is drafted, numbered and stored by the run that issues it (engine.letters.issuance,
engine.letters.group_issuance); so are its verify code and offline seal. What costs CPU, the PDF
render, the PAdES signature with its timestamp and the archival update (DSS + document
timestamp), is ``produce``: a function of the blank letter and an opened key, run in this
process (``Issuer._make``) or in a child process of a ``MakePool``.

A pool's children open the same key themselves, from the signer's ``KeySource`` (the unlocked
software key, or the token and its PIN), held in memory for the run and handed to our own
children over a pipe; nothing is written anywhere. Each child holds its own token session, as
PKCS#11 sessions cannot cross a fork. Numbers never leave the parent: a group's letters are
produced in any order and stored in one write, in number order, so numbers stay gapless
whatever a child does; a child that dies breaks the pool, and the group is issued again in the
parent, one letter at a time (group_issuance), with no number used meanwhile.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import select
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.timestamps import TimeStamper

from engine.errors import SuratDesaError
from engine.letters.render import LetterContent, render_letter
from engine.trust import lta
from engine.trust.signing import (
    KeySource,
    LoadedSigner,
    SigningError,
    TsaUnavailable,
    make_timestamper,
    sign_letter,
)


@dataclass(frozen=True)
class Blank:
    """A numbered letter ready to render and sign: everything ``produce`` needs but the key."""

    template_path: Path
    content: LetterContent
    verify_url: str
    qr_text: str
    paper: str
    reason: str
    location: str


@dataclass(frozen=True)
class Produced:
    pdf: bytes  # the letter as stored: certified, then (B-LTA) the archival update
    issued_sha256: str  # SHA-256 of the certified revision
    render: float  # seconds
    sign: float
    maker: int  # the process that made it (its pid)


def produce(
    blank: Blank,
    signer: LoadedSigner,
    timestamper: TimeStamper,
    archive: lta.ArchiveData | None,
) -> Produced:
    """Render, certify and timestamp the letter; with ``archive``, add the archival update
    (B-LTA). Without it the letter stays B-T (only bench/sign.py asks for that, to show what
    the archival update costs)."""
    t1 = time.perf_counter()
    pdf = render_letter(
        blank.template_path,
        blank.content,
        verify_url=blank.verify_url,
        paper=blank.paper,
        qr_text=blank.qr_text,
    )
    t2 = time.perf_counter()
    certified = sign_letter(pdf, signer, timestamper, reason=blank.reason, location=blank.location)
    signed = certified if archive is None else lta.extend_letter(certified, archive, timestamper)
    elapsed = time.perf_counter() - t2
    return Produced(signed, hashlib.sha256(certified).hexdigest(), t2 - t1, elapsed, os.getpid())


# --------------------------------------------------------------------------- the pool

# An ArchiveData as plain DER (asn1crypto values are sent between processes as bytes).
_ArchiveDer = tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...], datetime]


def _to_der(data: lta.ArchiveData) -> _ArchiveDer:
    return (
        tuple(c.dump() for c in data.certs),
        tuple(o.dump() for o in data.ocsps),
        tuple(c.dump() for c in data.crls),
        data.made_at,
    )


def _from_der(der: _ArchiveDer) -> lta.ArchiveData:
    certs, ocsps, crls, made_at = der
    return lta.ArchiveData(
        certs=tuple(asn1_x509.Certificate.load(c) for c in certs),
        ocsps=tuple(asn1_ocsp.OCSPResponse.load(o) for o in ocsps),
        crls=tuple(asn1_crl.CertificateList.load(c) for c in crls),
        made_at=made_at,
    )


class _Child:
    """A child process's opened key, timestamper and last archive data."""

    signer: LoadedSigner | None = None
    timestamper: TimeStamper | None = None
    archive: tuple[_ArchiveDer, lta.ArchiveData] | None = None


def _end_with(run_pid: int) -> None:
    """End this child as soon as the run's process ends, even by SIGKILL (a child's queue
    pipes never report the end: every child holds both of their ends)."""
    try:
        run = os.pidfd_open(run_pid)
    except ProcessLookupError:
        os._exit(1)

    def watch() -> None:
        select.select([run], [], [])  # readable once that process has ended
        os._exit(1)

    threading.Thread(target=watch, name="end-with-run", daemon=True).start()


def _child_start(
    run_pid: int, environ: dict[str, str], keys_dir: Path, tsa_url: str | None, source: KeySource
) -> None:
    _end_with(run_pid)
    # The server that forks the children started with the environment of its time; a child
    # works in the run's (a PKCS#11 module reads its configuration from it, e.g. SOFTHSM2_CONF).
    os.environ.clear()
    os.environ.update(environ)
    _Child.signer = source.open(keys_dir)
    _Child.timestamper = make_timestamper(tsa_url, keys_dir)


def _child_produce(blank: Blank, archive_der: _ArchiveDer | None) -> Produced | BaseException:
    """``produce`` in a child; an error comes back as a value, made safe to unpickle."""
    try:
        archive = None
        if archive_der is not None:
            if _Child.archive is None or _Child.archive[0] != archive_der:
                _Child.archive = (archive_der, _from_der(archive_der))
            archive = _Child.archive[1]
        return produce(blank, _Child.signer, _Child.timestamper, archive)
    except Exception as exc:  # noqa: BLE001 - handed back to the run, per letter
        return _portable(exc)


def _portable(exc: Exception) -> BaseException:
    """``exc`` if it survives pickling as itself, else an error of the same standing (an engine
    error stays an engine error: that letter alone fails, its number stays free)."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:  # noqa: BLE001, S110 - replaced below
        pass
    if isinstance(exc, SuratDesaError):
        return SigningError(str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


class MakePool:
    """``processes`` child processes rendering and signing with their own opened key.

    Children are forked from a clean server process (multiprocessing's "forkserver", preloaded
    with this module and the prepared fonts: engine.letters.make_pool_server), never from the
    run's own process, which holds threads (lease heartbeat, the worker's job threads) whose
    locks a fork could copy in a held state. The server also imports the program's main module
    once ("__main__"), which each child would otherwise import again."""

    def __init__(self, keys_dir: Path, tsa_url: str | None, source: KeySource, processes: int):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "engine.letters.make_pool_server"])
        self.processes = processes
        self._executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=context,
            initializer=_child_start,
            initargs=(os.getpid(), dict(os.environ), keys_dir, tsa_url, source),
        )

    def submit(self, blanks: list[Blank], archive: lta.ArchiveData | None) -> list[Future]:
        """Start making ``blanks`` on the children; ``collect`` gives the results."""
        der = None if archive is None else _to_der(archive)
        return [self._executor.submit(_child_produce, blank, der) for blank in blanks]

    @staticmethod
    def collect(futures: list[Future]) -> list[Produced | BaseException]:
        """One result per blank, in order: the letter, or the error that stopped it. A child
        that dies raises BrokenProcessPool here (the caller redoes the group)."""
        results: list[Produced | BaseException] = []
        for future in futures:
            down = next((r for r in results if isinstance(r, TsaUnavailable)), None)
            if down is not None and future.cancel():  # the TSA is silent: not asked again
                results.append(down)
            else:
                results.append(future.result())
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> MakePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
