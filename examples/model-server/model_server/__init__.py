"""A sample next-day-returns model server for modelrollout's tests and demos.

It is deliberately small and dependency-light (stdlib HTTP, numpy,
prometheus-client) so that the same code runs as a loopback process in the
test suite and as a container on kind. Everything the controllers rely on is
in the metric contract (``docs/metrics-contract.md``), not in this code.
"""

MODEL_NAME = "next-day-returns"
MODEL_VERSION = "1.0.0"
