"""Uploaded PDFs are validated in separate worker processes with a memory cap and a time
limit: a PDF bomb or a pathological file kills its worker, not the web server, and the web
process stays responsive. Workers are started once and reused (a fresh process per upload
would cost ~1 s of imports). The pool is per app process; it holds no shared state."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection

from engine.config import Settings
from engine.trust.verification import INVALID, CryptoOk, Verdict, crypto_check

QUEUE_WAIT_S = 30.0


class Busy(Exception):
    """Every worker stayed busy for QUEUE_WAIT_S."""


def _serve(conn: Connection, memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            pdf, roots, at = conn.recv()
        except EOFError:
            return
        try:
            result: Verdict | CryptoOk = crypto_check(pdf, trust_roots=roots, at=at)
        except MemoryError:
            result = _refused("Berkas terlalu besar atau terlalu rumit untuk diperiksa")
        del pdf
        conn.send(result)


def _refused(reason: str) -> Verdict:
    return Verdict(valid=False, status=INVALID, reasons=[reason])


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection


class VerifyPool:
    def __init__(
        self, size: int = 2, timeout: float = 20.0, memory_bytes: int = 1024 * 1024 * 1024
    ) -> None:
        self.size, self.timeout, self.memory_bytes = size, timeout, memory_bytes
        self._ctx = mp.get_context("spawn")  # never fork a threaded server
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self.memory_bytes), daemon=True, name="verify-worker"
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _take(self) -> _Worker:
        with self._lock:
            if self._started < self.size and self._idle.empty():
                self._started += 1
                return self._spawn()
        try:
            return self._idle.get(timeout=QUEUE_WAIT_S)
        except queue.Empty as e:
            raise Busy from e

    def warm(self) -> None:
        """Start every worker now (they import pyHanko once, ~1 s)."""
        with self._lock:
            while self._started < self.size:
                self._started += 1
                self._idle.put(self._spawn())

    def check(self, pdf: bytes, roots: list[bytes], at: datetime | None = None):
        """crypto_check in a worker; a worker that dies or overruns is replaced."""
        worker = self._take()
        healthy = False
        try:
            worker.conn.send((pdf, roots, at))
            if not worker.conn.poll(self.timeout):
                return _refused("Pemeriksaan berkas melewati batas waktu (berkas terlalu rumit)")
            result = worker.conn.recv()
            healthy = True
            return result
        except (EOFError, OSError, BrokenPipeError):
            return _refused("Berkas terlalu besar atau terlalu rumit untuk diperiksa")
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                worker.process.kill()
                worker.process.join(5)
                worker.conn.close()
                self._idle.put(self._spawn())

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            worker.process.kill()
            worker.conn.close()


_pool: VerifyPool | None = None
_pool_lock = threading.Lock()


def pool(settings: Settings) -> VerifyPool:
    """This process's pool, sized by the settings (verify_workers, verify_timeout_seconds,
    verify_memory_mb) when first used."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _set_pool(
                VerifyPool(
                    settings.verify_workers,
                    settings.verify_timeout_seconds,
                    settings.verify_memory_mb * 1024 * 1024,
                )
            )
        assert _pool is not None
        return _pool


_pool_pid = 0


def _set_pool(p: VerifyPool) -> None:
    global _pool, _pool_pid
    _pool, _pool_pid = p, os.getpid()
