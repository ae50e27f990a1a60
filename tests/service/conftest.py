from __future__ import annotations

import pytest
from service.service_helpers import start


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One service process for the session (default limits, batches in-process)."""
    srv = start(tmp_path_factory.mktemp("service"), "--max-body", "2000000")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tight(tmp_path_factory):
    """A service with a tiny body limit and a tiny solve time limit."""
    srv = start(
        tmp_path_factory.mktemp("tight"), "--max-body", "20000", "--solve-timeout", "0.0005"
    )
    yield srv
    srv.stop()
