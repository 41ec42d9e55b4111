"""schemathesis against the server's own OpenAPI schema, over HTTP: no request gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from server_live import LiveServer, make_datasets

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz")
    urls, _ = make_datasets(str(root / "data"), np.random.default_rng(3))
    server = LiveServer(urls, str(root / "server.log"), args=["--write-token", "fuzz", "--max-cutout-mb", "2"])
    yield server
    server.stop()


def test_no_request_gets_a_server_error(fuzz_server: LiveServer) -> None:
    # schemathesis' own pytest integration does not run under pytest 9 here, so each
    # operation's hypothesis strategy is driven directly.
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        @given(case=operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400 and case.method != "HEAD":
                assert set(response.json()) == {"error", "message", "detail"}, response.text

        check()
    assert not failures, "\n".join(failures)
    metrics = httpx.get(f"{fuzz_server.url}/metrics").text
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("bigarrays_requests_total{"))
    assert served >= 5 * len(operations)  # the fuzzer really reached the server
