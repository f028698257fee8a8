"""The hop from the event loop to a thread, for a handler's blocking use case (the database, the stores).

`loop.run_in_executor` on a pool of our own rather than Starlette's `run_in_threadpool` (anyio's worker threads): the
same hand-off with the caller's context variables, without anyio's capacity limiter, cancel scope and backend
look-ups around it, which cost about a third more CPU per hop. The pool is as large as anyio's default limiter
(40 threads), so as many use cases run at once as before. A request whose task is cancelled stops waiting; its use
case finishes in its thread, as under anyio.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

THREADS = 40
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="vmgallery-request")


async def to_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in a pool thread, with the caller's context variables."""
    return await start_in_thread(fn, *args, **kwargs)


def start_in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
    """`fn(*args, **kwargs)` handed to a pool thread now, with the caller's context variables; its future. For work
    that overlaps what the caller awaits next (a page write's checks, while its body arrives): a task wrapped around
    `to_thread` would hand it over only once the loop next ran that task, after the I/O callbacks queued before it."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return asyncio.get_running_loop().run_in_executor(_pool, call)
