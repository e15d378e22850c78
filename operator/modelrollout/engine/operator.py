"""Start-up: kopf settings, the operator's metrics endpoint, the controllers' handlers, and sharding.

This is the only module that knows every controller; each controller module
registers its own handlers with the shared :class:`Context`. With sharding, the
replica's :class:`~modelrollout.engine.sharding.Membership` reaches the controllers
through kopf's operator memo.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import kopf

from modelrollout import GROUP, VERSION, telemetry
from modelrollout.api.kinds import ALL_KINDS
from modelrollout.config import Settings
from modelrollout.engine import sharding
from modelrollout.engine.context import Context
from modelrollout.engine.reconciler import NoDiffBaseStorage
from modelrollout.kube import bootstrap
from modelrollout.kube.client import api_client, counting_login
from modelrollout.metrics.prometheus import PrometheusSettings, PrometheusSource


def prometheus_settings(settings: Settings) -> PrometheusSettings:
    auth = settings.prometheus_auth
    return PrometheusSettings(
        url=settings.prometheus_url,
        timeout=settings.prometheus_timeout,
        headers=dict(auth.headers),
        bearer_token=auth.bearer_token,
        bearer_token_file=Path(auth.bearer_token_file) if auth.bearer_token_file else None,
        basic_auth=(auth.username, auth.password) if auth.username and auth.password else None,
        ca_file=Path(auth.ca_file) if auth.ca_file else None,
        client_cert=(Path(auth.cert_file), Path(auth.key_file)) if auth.cert_file and auth.key_file else None,
        insecure_skip_verify=auth.insecure_skip_verify,
    )


def build_context(settings: Settings) -> Context:
    return Context(settings=settings, metrics=PrometheusSource(prometheus_settings(settings)))


def register_all(context: Context) -> None:
    from modelrollout.engine import driftmonitors, experiments, modeldeployments  # noqa: PLC0415 - optional kinds

    modeldeployments.register(context)
    driftmonitors.register(context)
    experiments.register(context)


def configure(operator_settings: Settings) -> None:
    @kopf.on.startup()
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Our progress lives in status; kopf's own bookkeeping stays in annotations under our prefix.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = NoDiffBaseStorage()  # timers need no diff; big specs stay writable
        settings.posting.level = logging.WARNING
        # kopf's threads only run the watch handlers (which queue keys) and deletions; the reconciliations
        # run on each controller's own workers (engine/controller.py).
        settings.execution.max_workers = 4
        settings.peering.mandatory = operator_settings.peering is not None
        settings.peering.lifetime = operator_settings.peering_lifetime
        # The API server ends each stream after this; kopf then lists and watches again. The client gives up a
        # minute later, so a connection that died silently is noticed too.
        settings.watching.server_timeout = operator_settings.watch_seconds
        settings.watching.client_timeout = operator_settings.watch_seconds + 60
        # One ClusterKopfPeering in every mode, created here when missing (kube/bootstrap.py): an
        # install is one apply, and a watched namespace needs no peering object of its own.
        settings.peering.clusterwide = True
        waiting = bootstrap.unserved(api_client(), GROUP, VERSION, [kind.plural for kind in ALL_KINDS])
        if waiting:  # kopf scans discovery once: start only when it lists every kind (kube/bootstrap.py)
            raise kopf.TemporaryError(f"waiting for the API to serve {', '.join(waiting)}.{GROUP}", delay=2)
        if operator_settings.peering is not None:
            try:
                bootstrap.ensure_peering(api_client(), operator_settings.peering)
            except bootstrap.PeeringNotServedError as error:
                raise kopf.TemporaryError(str(error), delay=2) from error

    # kopf's own requests (watches, finalizers, Events, peering) are counted like the controllers'.
    kopf.on.login()(counting_login)


def shard(settings: Settings) -> sharding.Membership:
    """Join the other replicas: Leases renewed from start-up, released at shutdown (engine/sharding.py)."""
    membership = sharding.join(settings, api_client())

    @kopf.on.startup()
    def join(**_: Any) -> None:
        membership.start()

    @kopf.on.cleanup()
    def leave(**_: Any) -> None:
        membership.stop()

    return membership


def run(settings: Settings) -> None:
    """Run until stopped. With a peering name only one of several replicas acts at a time; with shards, each
    replica reconciles the namespaces of the shards it holds."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A line per timer run drowns what matters; failures are still logged at WARNING and above.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    telemetry.serve(settings.metrics_port)
    configure(settings)
    register_all(build_context(settings))
    # After the controllers' handlers: at shutdown their queues stop before the shards are released.
    membership = shard(settings) if settings.shards else None
    kopf.run(
        # Distinct priorities: with equal ones kopf pauses every replica and nothing acts.
        priority=random.randint(1, 32767),
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=settings.peering is None,
        peering_name=settings.peering,
        liveness_endpoint=settings.liveness_endpoint,
        memo=kopf.Memo({sharding.MEMO_KEY: membership}),
    )
