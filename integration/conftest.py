import json
import shutil
import tempfile

import pytest

from harness import EXAMPLE_POLICY, Envoy, Upstream


def pytest_configure(config):
    """Every temporary directory of the run (Envoy configs and logs, Chromium profiles, Redis and
    CrowdSec data) lives under one run directory: removed when the run passes, kept for reading
    when it fails. Thousands of Envoys start per run; their leftovers once filled a CI disk."""
    config.botgate_run = tempfile.mkdtemp(prefix="botgate-run-")
    tempfile.tempdir = config.botgate_run


def pytest_sessionfinish(session, exitstatus):
    run = getattr(session.config, "botgate_run", None)
    if run is None:
        return
    if exitstatus == 0:
        shutil.rmtree(run, ignore_errors=True)
    else:
        print(f"\nintegration temporaries kept in {run}")


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
