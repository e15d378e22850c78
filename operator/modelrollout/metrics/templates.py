"""PromQL templates: ``{{name}}`` placeholders filled with values that cannot change the query.

Values come from resource names and specs that users control, so a value must never be able to
end a string literal and add PromQL of its own (``a"} or vector(1) #``). Where a placeholder
stands decides what is safe:

* Inside a string literal (``{revision="{{revision}}"}``), any value is allowed and is escaped
  for that literal: backslash, the quote character, newline, carriage return and tab become
  escape sequences, so the value stays one string. Raw (backtick) strings have no escapes, so a
  value containing a backtick or a line break (newline or carriage return) is refused there.
  The value is matched literally by ``=``; with ``=~`` it is still a regular expression (``.``
  matches anything), which cannot break out of the string but can match more than meant.
* Outside string literals (``rate(x[{{window}}])``, ``histogram_quantile({{q}}, ...)``), the
  value must be a single token of one of three shapes, or it is refused: a duration (``30s``,
  ``1h30m``), a non-negative number (``0.95``), or an identifier (a metric or label name) that
  is not a PromQL keyword or operator (``or``, ``by``, ``offset``...).
* In a ``#`` comment, any value without a line break: Prometheus ends a comment at a newline *or* a
  carriage return, so either would let the rest of the value be PromQL.

Placeholders are ``{{name}}`` or ``{{ name }}``. An unknown name, a ``{{`` that is not closed by
``}}``, a ``}}`` that closes nothing, or a string literal left open is a ``TemplateError``; the
template is checked before any value is used, so a broken template fails the same way whatever
the values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "offset", "bool", "atan2", "start", "end", "inf", "nan",
    }
)  # fmt: skip
"""Words that would change the query's structure or meaning where an identifier is expected."""

_PLACEHOLDER_NAME = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*")
_LINE_BREAKS = "\n\r"
"""What ends a PromQL comment (the Prometheus lexer's isEndOfLine)."""
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class TemplateError(ValueError):
    """The template is malformed, names an unknown placeholder, or a value is unsafe where it stands."""


@dataclass(frozen=True)
class _Placeholder:
    name: str
    quote: str | None
    """The quote character of the string literal it stands in, ``#`` in a comment; None elsewhere."""


def render(template: str, variables: Mapping[str, str]) -> str:
    """``template`` with every placeholder replaced by its value, made safe for where it stands."""
    parts = _parse(template)
    unknown = sorted({p.name for p in parts if isinstance(p, _Placeholder)} - set(variables))
    if unknown:
        raise TemplateError(f"unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(sorted(variables))}")
    return "".join(p if isinstance(p, str) else _substitute(p, variables[p.name]) for p in parts)


def placeholders(template: str) -> frozenset[str]:
    """The placeholder names a template uses (to check a spec before any query runs)."""
    return frozenset(p.name for p in _parse(template) if isinstance(p, _Placeholder))


def escape_string(value: str, quote: str = '"') -> str:
    """``value`` escaped for use inside a PromQL string literal delimited by ``quote``."""
    if quote == "`":
        if any(c in value for c in _LINE_BREAKS + "`"):
            raise TemplateError(
                f"{value!r} cannot stand in a raw (backtick) string: it contains a backtick or a line break"
            )
        return value
    return "".join(_ESCAPES.get(c, "\\" + c if c == quote else c) for c in value)


def _substitute(placeholder: _Placeholder, value: str) -> str:
    if placeholder.quote == "#":
        if any(c in value for c in _LINE_BREAKS):
            raise TemplateError(
                f"{{{{{placeholder.name}}}}} stands in a comment, which a line break in {value!r} would end"
            )
        return value
    if placeholder.quote is not None:
        return escape_string(value, placeholder.quote)
    if DURATION.fullmatch(value) or NUMBER.fullmatch(value):
        return value
    if IDENTIFIER.fullmatch(value) and value.lower() not in KEYWORDS:
        return value
    raise TemplateError(
        f"{{{{{placeholder.name}}}}} stands outside quotes, where only a duration, a number or a metric or label "
        f"name is allowed, not {value!r}; put it in quotes to use it as a label value"
    )


def _parse(template: str) -> list[str | _Placeholder]:
    """Split ``template`` into literal text and placeholders, tracking string literals and comments."""
    parts: list[str | _Placeholder] = []
    literal_start = 0
    quote: str | None = None
    comment = False
    i = 0
    while i < len(template):
        char = template[i]
        if template.startswith("{{", i):
            end = template.find("}}", i + 2)
            match = _PLACEHOLDER_NAME.fullmatch(template, i + 2, end) if end != -1 else None
            if match is None:
                raise TemplateError(f"unbalanced or malformed placeholder at offset {i}: {template[i : i + 20]!r}")
            parts.append(template[literal_start:i])
            parts.append(_Placeholder(match.group(1), "#" if comment else quote))
            i = literal_start = end + 2
            continue
        if template.startswith("}}", i) and quote is None and not comment:
            raise TemplateError(f"'}}}}' at offset {i} closes no placeholder")
        if comment:
            comment = char not in _LINE_BREAKS
        elif quote is not None:
            if char == "\\" and quote != "`":
                i += 1
            elif char == quote:
                quote = None
            elif char == "\n" and quote != "`":
                raise TemplateError(f"string literal broken by a newline at offset {i}")
        elif char in "\"'`":
            quote = char
        elif char == "#":
            comment = True
        i += 1
    if quote is not None:
        raise TemplateError(f"string literal opened with {quote} is never closed")
    parts.append(template[literal_start:])
    return [p for p in parts if p != ""]
