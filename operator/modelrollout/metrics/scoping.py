"""Namespace-scoped PromQL: every vector selector of a user's query is limited to the resource's namespace.

A ModelDeployment in namespace B with the guardrail ``sum(model_requests_total{namespace="A"})`` would
otherwise publish namespace A's numbers in B's status. As prom-label-proxy does, :func:`scope` enforces
``namespace="<own>"`` on every vector selector of the rendered query:

* a selector without a namespace matcher gets one (``up`` -> ``up{namespace="b"}``,
  ``{job="x"}`` -> ``{namespace="b",job="x"}``);
* a selector that already says ``namespace="<own>"`` is left as it is;
* any other namespace matcher (another namespace, ``!=``, a regular expression) is refused with a
  :class:`ScopeError` that says which, rather than silently rewritten: the query's author should hear
  that it cannot read there.

The rewrite works on the query's tokens, so the text sent to Prometheus is the user's own plus the
inserted matchers (an AST printer would re-render strings and durations). The result is then parsed
with ``promql-parser`` (the Prometheus grammar, in Rust) and every vector selector the parser finds,
inside functions, subqueries and binary operations alike, must carry exactly the enforced matcher;
anything the tokenizer and the parser disagree on is refused, never sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import promql_parser

LABEL = "namespace"
"""The label Prometheus gives a series' Kubernetes namespace (what ServiceMonitors and PodMonitors set)."""

KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "atan2"}
)
"""Words that are operators or modifiers where a metric name could otherwise stand."""
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
"""Keywords followed by a parenthesised list of label names, which are not selectors."""
NUMBERS = frozenset({"inf", "nan"})
UNSCOPABLE = frozenset({"info"})
"""Functions that read series the query does not name (``info`` joins ``target_info``), so no matcher can
limit them."""

_SPACE = re.compile(r"[ \t\n\r]+")
_COMMENT = re.compile(r"#[^\n\r]*")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?[a-zA-Z0-9_]*"
)
"""Numbers, and durations (a number with units: 5m, 1h30m)."""
_OPERATORS: tuple[str, ...] = (
    *("!=", "=~", "!~", "==", "<=", ">=", "(", ")", "{", "}", "[", "]", ","),
    *("=", "+", "-", "*", "/", "%", "^", "<", ">", "@", ":"),
)
"""Two-character operators first, so ``!=`` is not read as ``!``."""
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


class ScopeError(ValueError):
    """The query reads another namespace, or cannot be checked; it is not sent."""

    reason = "QueryOutsideNamespace"
    """The condition reason that reports it."""


class QueryParseError(ScopeError):
    """The query is not PromQL (so its selectors cannot be known)."""

    reason = "InvalidQuery"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "string", "number", "op"
    text: str
    start: int
    end: int


@dataclass
class _Selector:
    """One vector selector found in the tokens: where to insert, and its namespace matchers."""

    insert_at: int
    text: str
    namespace: list[tuple[str, str]] = field(default_factory=list)


MAX_QUERY_LENGTH = 16384
"""Longer queries are refused before they are parsed: the work is bounded whatever a spec holds."""


def scope(promql: str, namespace: str) -> str:
    """``promql`` with every vector selector limited to ``namespace``; :class:`ScopeError` if it cannot be."""
    if len(promql) > MAX_QUERY_LENGTH:
        raise QueryParseError(f"the query is {len(promql)} characters long; at most {MAX_QUERY_LENGTH} are accepted")
    if any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in promql):
        raise ScopeError("the query contains control characters")
    tokens = _tokens(promql)
    selectors = _selectors(tokens)
    matcher = f'{LABEL}="{namespace}"'
    inserts: list[tuple[int, str]] = []
    for selector in selectors:
        for op, value in selector.namespace:
            if (op, value) != ("=", namespace):
                raise ScopeError(
                    f"the query selects {LABEL}{op}{_quote(value)}; queries may only read their own namespace "
                    f"({namespace}) unless the operator allows cross-namespace queries"
                )
        if selector.namespace:
            continue
        inserts.append((selector.insert_at, selector.text.replace("NS", matcher)))
    scoped = promql
    for position, text in sorted(inserts, reverse=True):
        scoped = scoped[:position] + text + scoped[position:]
    _verify(scoped, namespace, len(selectors))
    return scoped


def _quote(value: str) -> str:
    """A matcher's value as the message quotes it: escaped, and cut at 100 characters (status stays small)."""
    shown = value if len(value) <= 100 else value[:100] + "…"
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tokens(promql: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(promql):
        char = promql[i]
        if (match := _SPACE.match(promql, i)) or (match := _COMMENT.match(promql, i)):
            i = match.end()
            continue
        if char in "\"'`":
            end = _string_end(promql, i)
            tokens.append(_Token("string", promql[i:end], i, end))
            i = end
            continue
        if match := _IDENTIFIER.match(promql, i):
            tokens.append(_Token("ident", match.group(), i, match.end()))
            i = match.end()
            continue
        if match := _NUMBER.match(promql, i):
            tokens.append(_Token("number", match.group(), i, match.end()))
            i = match.end()
            continue
        operator = next((op for op in _OPERATORS if promql.startswith(op, i)), None)
        if operator is None:
            raise QueryParseError(f"unexpected character {char!r} at offset {i}")
        tokens.append(_Token("op", operator, i, i + len(operator)))
        i += len(operator)
    return tokens


def _string_end(promql: str, start: int) -> int:
    quote = promql[start]
    i = start + 1
    while i < len(promql):
        char = promql[i]
        if char == "\\" and quote != "`":
            i += 2
            continue
        if char == quote:
            return i + 1
        if char == "\n" and quote != "`":
            break
        i += 1
    raise QueryParseError(f"string literal opened at offset {start} is never closed")


def _unquote(text: str) -> str:
    """The value of a PromQL string literal (Go escapes); what the namespace check compares."""
    if text[0] == "`":
        return text[1:-1]
    out: list[str] = []
    body = text[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = body[i + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i += 2
        elif escape in "\"'":
            out.append(escape)
            i += 2
        else:
            # \x, \u, \U and octal escapes: decoding them here would be a second grammar to get right; a
            # namespace matcher that needs them is refused (the result check would catch any mistake).
            raise ScopeError(f"escape \\{escape} in a label matcher is not supported where namespaces are enforced")
    return "".join(out)


def _selectors(tokens: list[_Token]) -> list[_Selector]:
    found: list[_Selector] = []
    i = 0
    brackets = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.text == "[":
            brackets += 1
        elif token.text == "]":
            brackets -= 1
        elif brackets:
            pass  # durations and steps of range selectors and subqueries
        elif token.kind == "ident" and token.text.lower() in GROUPING:
            if following is not None and following.text == "(":
                i = _closing(tokens, i + 1, "(", ")")
        elif token.kind == "ident" and (token.text.lower() in KEYWORDS or token.text.lower() in NUMBERS):
            pass
        elif token.kind == "ident" and following is not None and following.text == "(":
            if token.text in UNSCOPABLE:
                raise ScopeError(f"{token.text}() reads series the query does not name; it cannot be scoped")
        elif (
            token.kind == "ident"
            and following is not None
            and following.kind == "ident"
            and following.text.lower() in ("by", "without")
        ):
            pass  # an aggregation with its grouping first: sum by (le) (...)
        elif token.kind == "ident" and i > 0 and tokens[i - 1].text == "offset":
            pass
        elif token.kind == "ident":
            if following is not None and following.text == "{":
                end = _closing(tokens, i + 1, "{", "}")
                found.append(_block(tokens, i + 1, end))
                i = end
            else:
                found.append(_Selector(token.end, "{NS}"))
        elif token.text == "{":
            end = _closing(tokens, i, "{", "}")
            found.append(_block(tokens, i, end))
            i = end
        i += 1
    return found


def _closing(tokens: list[_Token], start: int, opening: str, closing: str) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].text == opening:
            depth += 1
        elif tokens[index].text == closing:
            depth -= 1
            if depth == 0:
                return index
    raise QueryParseError(f"unbalanced {opening!r}")


def _block(tokens: list[_Token], open_index: int, close_index: int) -> _Selector:
    """A ``{...}`` matcher list: its namespace matchers, and where ours goes (first, before the others)."""
    inner = tokens[open_index + 1 : close_index]
    selector = _Selector(tokens[open_index].end, "NS," if inner else "NS")
    for index, token in enumerate(inner):
        if token.kind == "ident" and token.text.lower() == "or" and index > 0 and inner[index - 1].kind == "string":
            raise ScopeError("'or' between label matchers is not supported where namespaces are enforced")
        name = token.text if token.kind == "ident" else (_unquote(token.text) if token.kind == "string" else None)
        is_name_position = index == 0 or inner[index - 1].text == ","
        if name == LABEL and is_name_position and index + 2 < len(inner):
            operator, value = inner[index + 1], inner[index + 2]
            if operator.kind != "op" or value.kind != "string":
                raise ScopeError(f"cannot read the {LABEL} matcher of the query")
            selector.namespace.append((operator.text, _unquote(value.text)))
    return selector


def _verify(scoped: str, namespace: str, expected: int) -> None:
    """Parse the result with the Prometheus grammar: every vector selector must carry exactly our matcher."""
    try:
        tree = promql_parser.parse(scoped)
    except ValueError as error:
        raise QueryParseError(f"the query does not parse: {error}") from None
    selectors: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        return True

    promql_parser.walk(tree, visit)
    if len(selectors) != expected:
        raise ScopeError(f"cannot tell the query's selectors apart ({expected} found, {len(selectors)} parsed)")
    for selector in selectors:
        matchers = selector.matchers
        if matchers.or_matchers:
            raise ScopeError("'or' between label matchers is not supported where namespaces are enforced")
        ours = [m for m in matchers.matchers if m.name == LABEL]
        if not ours or any(m.op != promql_parser.MatchOp.Equal or m.value != namespace for m in ours):
            raise ScopeError(f"a selector of the query is not limited to {LABEL}={namespace!r}")
