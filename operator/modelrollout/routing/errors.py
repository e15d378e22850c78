"""Why a router could not do what was asked.

The controller turns ``RouterUnavailable`` into a status condition (its ``reason`` is the
condition's reason) and keeps traffic where it is; anything else a router raises is a bug or a
transient API failure and propagates, so kopf retries the handler.
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base of the errors routers raise on purpose."""


class RouterUnavailable(RoutingError):  # noqa: N818 - reads as a state, like kopf's PermanentError
    """The router's objects cannot be used: CRD not installed, route missing, no permission."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        """CamelCase, for a status condition (CRDNotInstalled, RouteNotFound, ...)."""
        self.message = message
        """A sentence for people, naming the object."""


class UnsupportedFeature(RoutingError):  # noqa: N818 - the project's agreed name
    """The split asks for something this router cannot do (a mirror, header routes)."""
