"""The one retry policy (bigarrays_core/kvstore/retry.py) and its users.

The stores' use of it meets real faults in ``test_faults.py`` (a proxy in front of moto,
fake-gcs-server and a static server); here the policy itself, and the REST client, which
retries through the same policy (an httpx transport that answers as scripted).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

import bigarrays_core as bc
from bigarrays_core.errors import StorageError, StorageTimeoutError
from bigarrays_core.kvstore.failures import FATAL, MISSING, TRANSIENT, Failure
from bigarrays_core.kvstore.retry import RetryPolicy, storage_error


def _flaky(failures: int, exc: Exception) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return "ok"

    return attempt, calls


def _transient(exc: Exception) -> Failure:
    return Failure(TRANSIENT, str(exc))


def _raise(exc: Exception, failure: Failure, attempts: int) -> str:
    raise storage_error("read", "memory://x/k", failure, attempts) from exc


def test_transient_failures_are_retried_up_to_retries() -> None:
    policy = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.001)
    attempt, calls = _flaky(3, OSError("reset"))
    assert policy.call(attempt, _transient, _raise) == "ok" and len(calls) == 4
    attempt, calls = _flaky(4, OSError("reset"))
    with pytest.raises(StorageError, match="gave up after 4 attempts; last error: reset"):
        policy.call(attempt, _transient, _raise)
    assert len(calls) == 4


@pytest.mark.parametrize("kind", [MISSING, FATAL])
def test_other_failures_are_never_retried(kind: str) -> None:
    policy = RetryPolicy(retries=5, backoff=0.001)
    attempt, calls = _flaky(10, OSError("x"))
    assert policy.call(attempt, lambda exc: Failure(kind, "x"), lambda exc, f, n: f"gave up {f.kind} {n}") == \
        f"gave up {kind} 1"
    assert len(calls) == 1


def test_full_jitter_and_retry_after() -> None:
    policy = RetryPolicy(retries=10, backoff=0.5, max_backoff=3.0, max_retry_after=7.0)
    for attempts, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        pauses = [policy.pause(Failure(TRANSIENT, ""), attempts) for _ in range(200)]
        assert all(p is not None and 0 <= p <= cap for p in pauses)
        assert max(p for p in pauses if p is not None) > cap / 2  # spread over the range
    assert policy.pause(Failure(TRANSIENT, "", retry_after=2.0), 1) == 2.0
    assert policy.pause(Failure(TRANSIENT, "", retry_after=600.0), 1) == 7.0
    assert policy.pause(Failure(TRANSIENT, ""), 11) is None


@pytest.mark.parametrize("bad", [{"retries": -1}, {"backoff": -0.1}, {"max_backoff": -1.0}])
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_async_attempts_are_bounded_by_the_timeout_and_named_as_such() -> None:
    policy = RetryPolicy(retries=1, backoff=0.001)
    calls: list[int] = []

    async def slow() -> str:
        calls.append(1)
        await asyncio.sleep(5)
        return "late"

    with pytest.raises(StorageTimeoutError, match="gave up after 2 attempts; last error: no answer within 0.05 s"):
        asyncio.run(policy.acall(slow, _transient, _raise, timeout=0.05))
    assert len(calls) == 2


def test_a_timeout_raised_inside_an_attempt_is_classified_by_the_caller() -> None:
    """An SDK's own TimeoutError is the caller's to classify (here: fatal), not the policy's timeout."""
    policy = RetryPolicy(retries=3, backoff=0.001)

    async def sdk_timeout() -> str:
        raise TimeoutError("the SDK gave up")

    seen: list[Failure] = []

    def classify(exc: Exception) -> Failure:
        seen.append(Failure(FATAL, str(exc)))
        return seen[-1]

    with pytest.raises(StorageError, match="the SDK gave up"):
        asyncio.run(policy.acall(sdk_timeout, classify, _raise, timeout=5.0))
    assert len(seen) == 1


# -- the REST client -------------------------------------------------------------------------

INFO = {"type": "image", "data_type": "uint8", "num_channels": 1,
        "scales": [{"key": "s0", "size": [8, 8, 8], "voxel_offset": [0, 0, 0], "resolution": [1, 1, 1],
                    "chunk_sizes": [[8, 8, 8]], "encoding": "raw"}]}


def _client(script: list[httpx.Response | Exception], seen: list[httpx.Request], **options: float) -> bc.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = script.pop(0) if script else httpx.Response(200, json=INFO)
        if isinstance(step, Exception):
            raise step
        return step

    return bc.Client("http://bigarrays.invalid", transport=httpx.MockTransport(handler), **options)


def test_the_client_retries_busy_answers_and_honours_retry_after() -> None:
    seen: list[httpx.Request] = []
    script: list[httpx.Response | Exception] = [
        httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"}), httpx.ConnectError("refused"),
    ]
    with _client(script, seen, retries=3, backoff=0.001) as client:
        assert json.loads(client.request("GET", "/v1/x/info").content) == INFO
        assert len(seen) == 4


def test_the_client_gives_up_with_the_servers_error_after_its_retries() -> None:
    seen: list[httpx.Request] = []
    script: list[httpx.Response | Exception] = [httpx.Response(503, json={"error": "busy", "message": "try later"})] * 9
    with _client(script, seen, retries=2, backoff=0.001) as client:
        with pytest.raises(bc.BigArraysError, match="503"):
            client.request("GET", "/v1/x/info")
        assert len(seen) == 3


def test_the_client_names_the_attempts_when_the_connection_keeps_failing() -> None:
    seen: list[httpx.Request] = []
    with _client([httpx.ReadTimeout("slow")] * 9, seen, retries=1, backoff=0.001) as client:
        with pytest.raises(StorageTimeoutError, match="failed after 2 attempts"):
            client.request("GET", "/v1/x/info")
        assert len(seen) == 2


def test_the_client_does_not_retry_a_client_error() -> None:
    seen: list[httpx.Request] = []
    with _client([httpx.Response(404, json={"error": "not_found", "message": "no dataset x"})], seen,
                 retries=5, backoff=0.001) as client:
        with pytest.raises(bc.BigArraysError, match="no dataset x"):
            client.request("GET", "/v1/x/info")
        assert len(seen) == 1
