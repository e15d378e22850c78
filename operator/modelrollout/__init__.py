"""modelrollout: roll ML models out declaratively and safely on Kubernetes.

The package is layered so that every decision can be tested without a cluster:
``api`` (resource models), ``stats`` and ``core`` are pure; ``metrics``,
``routing`` and ``kube`` are thin adapters; ``engine`` wires them to kopf.
"""

GROUP = "modelrollout.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = ["API_VERSION", "GROUP", "VERSION"]
