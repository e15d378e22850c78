"""Built-in smoke checks: does a freshly deployed model answer sanely before it gets traffic?

The checks only need a base URL and an HTTP client function, so the same code
runs in the smoke Job against a cluster Service and in tests against a model
server on a loopback port.
"""

from modelrollout.smoke.checks import CHECK_NAMES, run_checks
from modelrollout.smoke.config import GoldenInputs, SmokeConfig, load_golden
from modelrollout.smoke.http import HttpClient, HttpResponse, urllib_client
from modelrollout.smoke.report import CheckResult, SmokeReport

__all__ = [
    "CHECK_NAMES",
    "CheckResult",
    "GoldenInputs",
    "HttpClient",
    "HttpResponse",
    "SmokeConfig",
    "SmokeReport",
    "load_golden",
    "run_checks",
    "urllib_client",
]
