"""PromQL templating: placeholders are filled, and no value can add PromQL of its own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.metrics.templates import TemplateError, escape_string, placeholders, render

VARS = {"revision": "3-5f1c2a9e", "namespace": "prod", "window": "5m", "q": "0.95", "metric": "http_requests_total"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('up{revision="{{revision}}"}', 'up{revision="3-5f1c2a9e"}'),
        ('up{revision="{{ revision }}"}', 'up{revision="3-5f1c2a9e"}'),
        ("rate(x[{{window}}])", "rate(x[5m])"),
        ("histogram_quantile({{q}}, rate(x[{{window}}]))", "histogram_quantile(0.95, rate(x[5m]))"),
        ("sum(rate({{metric}}[1m]))", "sum(rate(http_requests_total[1m]))"),
        ("up{ns='{{namespace}}'}", "up{ns='prod'}"),
        ("up{ns=`{{namespace}}`}", "up{ns=`prod`}"),
        ('sum(x{a="}}"})', 'sum(x{a="}}"})'),  # inside a string, }} is just text
        ("up # {{revision}} in a comment", "up # 3-5f1c2a9e in a comment"),
        ("no placeholders", "no placeholders"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, VARS) == expected


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ('a"} or vector(1) #', r'"a\"} or vector(1) #"'),
        ("a\nor vector(1)", r'"a\nor vector(1)"'),
        ("a\\", r'"a\\"'),
        ('a\\"} or vector(1) #', r'"a\\\"} or vector(1) #"'),
        ("tab\there\r", r'"tab\there\r"'),
        ("it's", '"it\'s"'),
    ],
)
def test_values_in_double_quotes_stay_one_string(value: str, quoted: str) -> None:
    assert render('up{revision="{{v}}"}', {"v": value}) == "up{revision=" + quoted + "}"


def test_values_in_single_quotes_escape_the_single_quote() -> None:
    assert render("up{r='{{v}}'}", {"v": "a'} or vector(1) #"}) == r"up{r='a\'} or vector(1) #'}"
    assert render("up{r='{{v}}'}", {"v": 'say "hi"'}) == "up{r='say \"hi\"'}"


@pytest.mark.parametrize("value", ["a` or vector(1) #", "a\nb"])
def test_raw_strings_refuse_what_they_cannot_escape(value: str) -> None:
    with pytest.raises(TemplateError, match="raw"):
        render("up{r=`{{v}}`}", {"v": value})


@pytest.mark.parametrize(
    "value",
    [
        "5m] or vector(1) #",
        "5m\n",
        "1h 30m",
        'x"',
        "or",
        "OFFSET",
        "by",
        "-1",
        "1e9",
        "",
        "sum(x)",
        "5m)",
    ],
)
def test_values_outside_quotes_must_be_a_single_safe_token(value: str) -> None:
    with pytest.raises(TemplateError, match="outside quotes"):
        render("rate(x[{{window}}])", {"window": value})


@pytest.mark.parametrize("value", ["30s", "1h30m", "500ms", "2d", "1w", "1y", "0.5", "10", "job", "le", "a:b_c"])
def test_safe_tokens_outside_quotes(value: str) -> None:
    assert render("f({{v}})", {"v": value}) == f"f({value})"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('up{r="{{nope}}"}', "unknown placeholder"),
        ('up{r="{{revision}"}', "unbalanced or malformed"),
        ('up{r="{{revision"}', "unbalanced or malformed"),
        ("up{r={{ re vision }}}", "unbalanced or malformed"),
        ("up}} ", "closes no placeholder"),
        ('up{r="{{revision}}}', "never closed"),
        ('up{r="a\n"}', "newline"),
    ],
)
def test_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, VARS)


def test_a_broken_template_fails_whatever_the_values() -> None:
    with pytest.raises(TemplateError):
        render('up{r="{{revision}}"} {{', {})


def test_placeholders() -> None:
    assert placeholders('rate(x{r="{{revision}}"}[{{ window }}]) / {{window}}') == {"revision", "window"}


@given(st.text())
def test_any_value_in_quotes_reads_back_as_itself(value: str) -> None:
    """What Prometheus' lexer would unquote is exactly the value: the escaping is lossless."""
    quoted = escape_string(value)
    assert '"' not in quoted.replace('\\"', "")
    assert "\n" not in quoted
    assert _unquote(quoted) == value


def _unquote(escaped: str) -> str:
    table = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", '"': '"'}
    out, i = [], 0
    while i < len(escaped):
        if escaped[i] == "\\":
            out.append(table[escaped[i + 1]])
            i += 2
        else:
            out.append(escaped[i])
            i += 1
    return "".join(out)


def test_a_newline_cannot_end_a_comment() -> None:
    with pytest.raises(TemplateError, match="comment"):
        render("up # {{v}}", {"v": "x\nor vector(1)"})


@pytest.mark.parametrize("line_break", ["\n", "\r", "\r\n"])
def test_no_line_break_can_end_a_comment(line_break: str) -> None:
    """Prometheus ends a comment at a carriage return as well as at a newline."""
    with pytest.raises(TemplateError, match="comment"):
        render("up # {{v}}", {"v": f"x{line_break}or vector(1)"})


@pytest.mark.parametrize("line_break", ["\n", "\r"])
def test_no_line_break_can_stand_in_a_raw_string(line_break: str) -> None:
    with pytest.raises(TemplateError, match="raw"):
        render("up{a=`{{v}}`}", {"v": f"x{line_break}y"})


def test_a_carriage_return_ends_a_comment_in_the_template_itself() -> None:
    """After ``# c\\r`` the template is PromQL again, so its placeholders are outside any comment."""
    assert render("up # c\r+ rate(x[{{w}}])", {"w": "5m"}) == "up # c\r+ rate(x[5m])"
    with pytest.raises(TemplateError, match="outside quotes"):
        render("up # c\r+ {{w}}", {"w": "a b"})
