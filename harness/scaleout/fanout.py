"""The one fan-out helper: ``fn(*args)`` for each call, in process, on local worker processes (loky) or on
an existing Dask cluster, results in call order. ``batch`` and ``rank-models`` both run through it."""

from __future__ import annotations

import os
import re
from typing import Callable, Optional

from knowledge.schema import KnowledgeError

SCHEDULER_RE = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):\d{1,5}"
                          r"|inproc://\S+")


def scheduler_timeout() -> str:
    """How long to wait for a Dask scheduler: ``TLEXPERT_SCHEDULER_TIMEOUT`` seconds, 20 by default
    (a closed port is retried until then)."""
    raw = os.environ.get("TLEXPERT_SCHEDULER_TIMEOUT", "20")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise KnowledgeError(f"TLEXPERT_SCHEDULER_TIMEOUT must be a number of seconds between 0 and 3600. "
                             f"Got {raw!r} instead.")
    return f"{seconds}s"


def check_scheduler(address: str) -> str:
    """A Dask scheduler address (``tcp://host:port``, ``host:port``, ``tls://...``), checked before any work."""
    from knowledge.reading import show

    if not SCHEDULER_RE.fullmatch(address or "") or (
            ":" in address and not address.startswith("inproc") and int(address.rsplit(":", 1)[1]) > 65535):
        raise KnowledgeError(f"The '--scheduler' option must be a Dask scheduler address such as "
                             f"tcp://host:8786. Got {show(repr(address))} instead.")
    return address


def fan_out(fn: Callable, calls: list, *, jobs: int = 1, scheduler: Optional[str] = None,
            on_result: Optional[Callable] = None) -> list:
    """``[fn(*args) for args in calls]``: in process (``jobs`` 1 and no ``scheduler``), on ``jobs`` local
    processes, or on the Dask cluster at ``scheduler`` (an address that cannot be reached is one error
    line). ``on_result(i, result)`` as each result arrives, in order. ``fn`` must be a module-level
    function (it is pickled to the workers)."""
    out: list = [None] * len(calls)

    def done(i, result):
        out[i] = result
        if on_result is not None:
            on_result(i, result)

    if scheduler is None and jobs <= 1:
        for i, args in enumerate(calls):
            done(i, fn(*args))
        return out
    from joblib import Parallel, delayed, parallel_config

    client = None
    if scheduler is not None:
        from dask.distributed import Client

        try:
            client = Client(check_scheduler(scheduler), timeout=scheduler_timeout())
        except (OSError, ValueError, TypeError) as exc:
            raise KnowledgeError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
        ctx = parallel_config(backend="dask")
    else:
        ctx = parallel_config(backend="loky", n_jobs=jobs)
    try:
        with ctx:
            par = Parallel(n_jobs=jobs if scheduler is None else -1, return_as="generator")
            for i, result in enumerate(par(delayed(fn)(*args) for args in calls)):
                done(i, result)
    finally:
        if client is not None:
            client.close()
    return out
