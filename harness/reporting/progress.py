"""Progress for long runs: messages and bars on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
from typing import Callable, Optional


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class Progress:
    """``progress("message")`` prints a line; ``progress.bar(total, desc)`` is a bar (tqdm)."""

    def __init__(self, enabled: bool = True, sink: Optional[Callable[[str], None]] = None):
        self.enabled = enabled
        self.sink = sink

    def __call__(self, msg: str) -> None:
        if self.sink is not None:
            self.sink(msg)
        elif self.enabled:
            from tqdm import tqdm

            tqdm.write(f"  {msg}", file=sys.stderr)

    def bar(self, total: int, desc: str):
        if not self.enabled or self.sink is not None:
            return _NoBar()
        from tqdm import tqdm

        return tqdm(total=total, desc=f"  {desc}", leave=False, file=sys.stderr, dynamic_ncols=True)


def as_progress(p) -> Progress:
    """Accept a Progress, a plain callable (messages only) or None."""
    if isinstance(p, Progress):
        return p
    return Progress(enabled=False, sink=p or (lambda s: None))
