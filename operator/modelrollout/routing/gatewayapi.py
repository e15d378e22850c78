"""Traffic split on a Gateway API HTTPRoute (gateway.networking.k8s.io/v1).

The user owns the HTTPRoute: its parents, hostnames, matches and filters. The operator owns,
on the rule selected by ``ruleIndex`` (the weighted rule), the ``backendRefs`` and the
``RequestMirror`` filters, and it owns the rules it adds for header routes. Those are named
``modelrollout-header-<n>`` (``rules[].name`` is standard since Gateway API v1.4, GEP-995), so
``ruleIndex`` counts only the rules the user wrote and keeps pointing at the same rule while the
operator adds and removes its own; the ``modelrollout-`` prefix is reserved for that.

Header rules copy the weighted rule's matches and add the header condition to each, so they are
strictly more specific and win under Gateway API's precedence (more header matches first)
whatever their position; they are also placed right before the weighted rule for proxies that
break ties by order. Everything written spells out the values the API server would default
(kind Service, weight, header match type), so the stored object equals what was computed and a
second ``apply`` sends nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client import CustomObjectsApi

from modelrollout.routing.errors import RouterUnavailable
from modelrollout.routing.patching import CustomResource, Patch, read_custom, update_custom
from modelrollout.routing.router import require
from modelrollout.routing.split import Backend, Feature, HeaderRoute, TrafficSplit, percentages, read_back

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"
OWNED_RULE_PREFIX = "modelrollout-"
MIRROR_FILTER = "RequestMirror"

Rule = dict[str, Any]


def is_owned(rule: Rule) -> bool:
    """Whether the operator added this rule (for a header route)."""
    return str(rule.get("name", "")).startswith(OWNED_RULE_PREFIX)


def weighted_position(rules: list[Rule], rule_index: int) -> int:
    """The position in ``rules`` of the ``rule_index``-th rule the user wrote."""
    user_positions = [i for i, rule in enumerate(rules) if not is_owned(rule)]
    if rule_index >= len(user_positions):
        raise RouterUnavailable(
            "RuleNotFound", f"ruleIndex {rule_index} is out of range: the route has {len(user_positions)} rule(s)"
        )
    return user_positions[rule_index]


def desired_rules(rules: list[Rule], rule_index: int, split: TrafficSplit, port: int) -> list[Rule]:
    """The route's rules with ``split`` in force; the input is not modified."""
    position = weighted_position(rules, rule_index)
    weighted = copy.deepcopy(rules[position])
    weighted["backendRefs"] = [_backend_ref(weighted, b.service, port, b.weight) for b in split.backends]
    filters = [f for f in weighted.get("filters", []) if f.get("type") != MIRROR_FILTER]
    if split.mirror is not None:
        filters.append(_mirror_filter(rules[position], split.mirror, port))
    if filters:
        weighted["filters"] = filters
    else:
        weighted.pop("filters", None)
    ports = {ref["name"]: ref.get("port", port) for ref in weighted["backendRefs"]}
    header_rules = [
        _header_rule(weighted, n, route, ports[route.service]) for n, route in enumerate(split.header_routes)
    ]
    result: list[Rule] = []
    for i, rule in enumerate(rules):
        if i == position:
            result.extend(header_rules)
            result.append(weighted)
        elif not is_owned(rule):
            result.append(copy.deepcopy(rule))
    return result


def split_from_rules(rules: list[Rule], rule_index: int) -> TrafficSplit | None:
    """The split the rules put in force; None when the weighted rule sends traffic nowhere."""
    weighted = rules[weighted_position(rules, rule_index)]
    refs = [ref for ref in weighted.get("backendRefs", []) if _is_service(ref)]
    shares = percentages([int(ref.get("weight", 1)) for ref in refs])
    if shares is None:
        return None
    mirrors = [
        f["requestMirror"]["backendRef"]["name"] for f in weighted.get("filters", []) if f.get("type") == MIRROR_FILTER
    ]
    return read_back(
        lambda: TrafficSplit(
            backends=tuple(Backend(ref["name"], "", share) for ref, share in zip(refs, shares, strict=True)),
            mirror=mirrors[0] if mirrors else None,
            header_routes=tuple(_header_route(rule, weighted) for rule in rules if is_owned(rule)),
        ),
        f"rule {rule_index} of the HTTPRoute",
    )


def route_patch(route: dict[str, Any], rule_index: int, split: TrafficSplit, port: int) -> Patch | None:
    """The JSON merge patch that puts ``split`` in force on ``route``, or None when it already is.

    Merge patch replaces lists whole, so ``spec.rules`` is sent complete: rules the operator
    does not own go back exactly as they were read.
    """
    rules: list[Rule] = route.get("spec", {}).get("rules", [])
    desired = desired_rules(rules, rule_index, split, port)
    if desired == rules:
        return None
    return {"spec": {"rules": desired}}


class GatewayAPIRouter:
    """Weights on the backendRefs of one rule of an existing HTTPRoute."""

    name = "gatewayAPI"

    def __init__(self, objects: CustomObjectsApi, namespace: str, http_route: str, rule_index: int, port: int) -> None:
        self._objects = objects
        self._route = CustomResource(GROUP, VERSION, PLURAL, "HTTPRoute", namespace, http_route)
        self._rule_index = rule_index
        self._port = port

    def supports(self, features: Feature) -> bool:
        return features in Feature.MIRROR | Feature.HEADER_ROUTING

    def check(self) -> None:
        route = read_custom(self._objects, self._route)
        weighted_position(route.get("spec", {}).get("rules", []), self._rule_index)

    def apply(self, split: TrafficSplit) -> None:
        require(self, split)
        update_custom(self._objects, self._route, lambda route: route_patch(route, self._rule_index, split, self._port))

    def observe(self) -> TrafficSplit | None:
        route = read_custom(self._objects, self._route)
        return split_from_rules(route.get("spec", {}).get("rules", []), self._rule_index)

    def realised(self, split: TrafficSplit) -> TrafficSplit:
        return split


def _is_service(ref: dict[str, Any]) -> bool:
    return ref.get("group", "") == "" and ref.get("kind", "Service") == "Service" and "namespace" not in ref


def _backend_ref(rule: Rule, service: str, port: int, weight: int) -> dict[str, Any]:
    """The rule's existing ref to ``service`` with the new weight (keeping its port and filters)."""
    for ref in rule.get("backendRefs", []):
        if _is_service(ref) and ref.get("name") == service:
            return {**ref, "group": "", "kind": "Service", "weight": weight}
    return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}


def _mirror_filter(rule: Rule, service: str, port: int) -> dict[str, Any]:
    for existing in rule.get("filters", []):
        if existing.get("type") == MIRROR_FILTER and existing["requestMirror"]["backendRef"].get("name") == service:
            found: dict[str, Any] = copy.deepcopy(existing)
            return found
    return {
        "type": MIRROR_FILTER,
        "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": service, "port": port}},
    }


def _header_rule(weighted: Rule, n: int, route: HeaderRoute, port: int) -> Rule:
    """A rule sending ``route``'s requests to its Service, otherwise matching like the weighted rule."""
    condition = {"type": "Exact", "name": route.header, "value": route.value}
    matches = []
    for match in weighted.get("matches") or [{}]:
        headers = [h for h in match.get("headers", []) if str(h.get("name", "")).lower() != route.header]
        matches.append({**match, "headers": [*headers, condition]})
    rule: Rule = {
        "name": f"{OWNED_RULE_PREFIX}header-{n}",
        "matches": matches,
        "backendRefs": [{"group": "", "kind": "Service", "name": route.service, "port": port, "weight": 1}],
    }
    filters = [f for f in weighted.get("filters", []) if f.get("type") != MIRROR_FILTER]
    if filters:
        rule["filters"] = copy.deepcopy(filters)
    if "timeouts" in weighted:
        rule["timeouts"] = copy.deepcopy(weighted["timeouts"])
    return rule


def _header_route(rule: Rule, weighted: Rule) -> HeaderRoute:
    """Read a header rule back: its header is the one condition the weighted rule lacks."""
    base = {str(h.get("name", "")).lower() for h in ((weighted.get("matches") or [{}])[0].get("headers", []))}
    first = (rule.get("matches") or [{}])[0]
    added = [h for h in first.get("headers", []) if str(h.get("name", "")).lower() not in base]
    refs = rule.get("backendRefs", [])
    if len(added) != 1 or len(refs) != 1:
        raise RouterUnavailable("RouteModified", f"rule {rule.get('name')} was changed by someone else")
    return HeaderRoute(added[0]["name"], added[0]["value"], refs[0]["name"])
