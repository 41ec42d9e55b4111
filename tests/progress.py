"""A progress callback that interrupts a long operation part way, as Ctrl-C does."""

from __future__ import annotations


class StopAfter:
    """``progress=StopAfter(n)``: raises KeyboardInterrupt once ``n`` chunks have been reported
    done (progress is reported per finished task, so a few more may be done by then).
    :attr:`calls` holds every count reported, the first being what an earlier run finished."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.calls: list[int] = []

    def __call__(self, n: int) -> None:
        self.calls.append(n)
        if sum(self.calls) >= self.chunks:
            raise KeyboardInterrupt(f"stopped by the test after {self.chunks} chunks")
