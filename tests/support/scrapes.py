"""Waiting for Prometheus to have scraped what a test's servers counted: a condition, not a fixed pause."""

from __future__ import annotations

import time

from modelrollout.metrics import PrometheusSource
from tests.support.waiting import wait_for

SCRAPE_TIMEOUT_SECONDS = 30.0


def wait_for_scrapes(
    source: PrometheusSource,
    job: str,
    targets: int,
    *,
    since: float | None = None,
    timeout: float = SCRAPE_TIMEOUT_SECONDS,
) -> None:
    """Until each of the ``targets`` targets of ``job`` has a scrape that began after ``since`` (default: now).

    Prometheus writes a target's ``up`` sample with the samples of the same scrape, stamped with the
    scrape's start: once ``timestamp(up)`` is past ``since`` for every target, what the servers had
    counted by ``since`` is queryable.
    """
    after = time.time() if since is None else since
    query = f'timestamp(up{{job="{job}"}}) > {after:.3f}'
    wait_for(
        lambda: len(source.query_vector(query)) >= targets,
        timeout,
        message=f"a scrape of each of the {targets} targets of {job} after {after:.3f}",
    )
