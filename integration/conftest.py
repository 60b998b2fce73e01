import json

import pytest

from harness import EXAMPLE_POLICY, Envoy, Upstream


@pytest.fixture(scope="session")
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def envoy_with(upstream):
    """Starts Envoy with a policy (dict); stops every Envoy the test started."""
    started = []

    def start(policy, **kw):
        e = Envoy(policy, upstream.port, **kw)
        started.append(e)
        return e

    yield start
    for e in started:
        e.close()


@pytest.fixture
def example_policy():
    return json.loads(EXAMPLE_POLICY.read_text())
