"""Deleting a test's namespaces for good on a cluster that several operator processes may watch.

Test operators of other sessions watch ``mr-*`` namespaces too; one stopped between adding kopf's
finalizer to an object and removing it leaves the namespace Terminating forever. A test deletes its
namespaces while its own operator still runs, waits, and strips what finalizers are left on its own
custom resources.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from kubernetes import client

from tests.support.waiting import wait_for

GROUP, VERSION = "modelrollout.dev", "v1alpha1"
PLURALS = ("modeldeployments", "driftmonitors", "experiments")


def delete_namespaces(api: client.ApiClient, names: Iterable[str], *, grace: float = 30.0) -> None:
    core = client.CoreV1Api(api)
    wanted = set(names)
    for name in wanted:
        core.delete_namespace(name)
    # Past the grace period, what is left is freed below rather than failed on.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not _remaining(core, wanted), grace, interval=1, message="the namespaces to be deleted")
    objects = client.CustomObjectsApi(api)
    for name in _remaining(core, wanted):
        for plural in PLURALS:
            for item in objects.list_namespaced_custom_object(GROUP, VERSION, name, plural)["items"]:
                if item["metadata"].get("finalizers"):
                    objects.patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        name,
                        plural,
                        item["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                        _content_type="application/merge-patch+json",
                    )


def _remaining(core: client.CoreV1Api, names: set[str]) -> set[str]:
    return {ns.metadata.name for ns in core.list_namespace().items} & names
