"""The soak of bench/soak.py, small (issue 16, item 15): CI jobs waiting with the real `xbuild submit
--wait` while the broker, the store (SeaweedFS) and the API restart under them lose no build, and
they say they were retrying. The full one (100 builds, 10 clients, a worker killed mid-build) is
`bench/soak.py`; its figures are in docs/service.md. On Redis only, for the suite's time: RabbitMQ's
restart under a running build is test_service's test_broker_restart_loses_no_build[rabbitmq], and
the full soak runs on either (`--broker rabbitmq`)."""

from __future__ import annotations

import pytest

from bench.soak import print_report, soak

pytestmark = pytest.mark.integration


def test_restarts_under_waiting_clients_lose_no_build(engine, capsys):
    faults = ("restart the api", "restart the broker", "restart s3")
    report = soak(builds=6, clients=2, workers=1, broker="redis", deadline_s=900, faults=faults)
    with capsys.disabled():
        print_report(report)  # the figures, in the test's output
    assert tuple(f for f, _ in report["faults"]) == faults
    assert report["lost"] == 0, report["lost_builds"]
    assert report["twice"] == [] and report["jobs_run"] == 6
    assert report["retried"], "no client met the API's restart"
