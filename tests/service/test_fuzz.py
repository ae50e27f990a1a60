"""Schemathesis over /openapi.json (a bounded number of examples per operation): no 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings


@schemathesis.serializer("application/toml")
def _toml(ctx, value) -> bytes:
    """The TOML body as generated (a string), as bytes."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)


OPERATIONS = [
    ("GET", "/v1/health"),
    ("POST", "/v1/allocate"),
    ("POST", "/v1/rebalance"),
    ("POST", "/v1/frontier"),
    ("POST", "/v1/scenarios/run"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches/{job_id}"),
    ("GET", "/v1/batches/{job_id}/orders"),
]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_operation_answers_500(api_schema, server, method, path):
    op = api_schema[path][method]
    headers = {"Authorization": f"Bearer {server.keys['desk1']}"}

    @given(case=op.as_strategy())
    @settings(
        max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def fuzz(case):
        response = case.call(base_url=server.url, headers=headers, timeout=60)
        assert response.status_code < 500 or response.status_code in (503, 504), (
            response.status_code,
            response.text[:500],
        )
        if response.status_code >= 400:
            assert "error" in response.json()
            assert "Traceback" not in response.text

    fuzz()
