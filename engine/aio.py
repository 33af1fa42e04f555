"""Run pyHanko's coroutines from synchronous engine code, from any thread.

A thread that already runs an event loop (an async web handler, or Playwright's sync API in a
test) cannot block on another loop, so the coroutine then runs on a short-lived worker thread.
Otherwise each thread reuses one loop instead of building and tearing one down per call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_loops = threading.local()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            _loops.loop = loop
        return loop.run_until_complete(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run_sync, coro).result()
