"""The processes of one `serve` end together: its Redis and its workers die with it.

A SIGKILL of `serve` (an OOM kill) runs none of its cleanup, so each child asks the kernel
for a parent-death signal instead (Linux prctl; elsewhere only the check below applies).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

_PR_SET_PDEATHSIG = 1
# A worker whose parent died before it asked for the signal: it served nothing, exits.
_ORPHANED_AT_START = 1


def end_with_parent(parent_pid: int) -> None:
    """Have SIGTERM sent to this process when `parent_pid` exits; exit now if it already has."""
    # SIGTERM, not SIGKILL: Redis fsyncs its AOF, a worker answers the requests it holds.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The signal follows the current parent: if ours died before the prctl we were already
    # handed to init (or a subreaper), and no signal will ever come.
    if os.getppid() != parent_pid:
        os._exit(_ORPHANED_AT_START)


def create_worker_app() -> FastAPI:
    """Return the app for a uvicorn worker process, tied to the `serve` that spawned it."""
    from service.main import create_app

    # uvicorn spawns workers (multiprocessing, spawn) when workers > 1; with one worker it
    # serves in the serve process itself, which has no parent to follow.
    supervisor = multiprocessing.parent_process()
    if supervisor is not None and supervisor.pid is not None:
        end_with_parent(supervisor.pid)
    return create_app()
