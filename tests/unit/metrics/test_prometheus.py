"""PrometheusSource against a stub Prometheus on loopback: answers, errors and timeouts as the API gives them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from modelrollout.metrics import NoDataError, PrometheusSettings, PrometheusSource, QueryError, Sample
from tests.support.waiting import pace

Reply = tuple[int, object]
"""HTTP status and the JSON body."""


def ok(result_type: str, result: object) -> Reply:
    return 200, {"status": "success", "data": {"resultType": result_type, "result": result}}


def error(status: int, error_type: str, message: str) -> Reply:
    return status, {"status": "error", "errorType": error_type, "error": message}


class StubPrometheus:
    """Answers /api/v1/* with ``reply(path, query)``; records requests and their headers."""

    def __init__(self, reply: Callable[[str, str], Reply]) -> None:
        self.reply = reply
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                stub.requests.append((url.path, query, dict(self.headers)))
                status, body = stub.reply(url.path, query)
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> StubPrometheus:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str, str], Reply]], PrometheusSource]]:
    stack: list[tuple[StubPrometheus, PrometheusSource]] = []

    def start(reply: Callable[[str, str], Reply], **settings: object) -> PrometheusSource:
        stub = StubPrometheus(reply).__enter__()
        source = PrometheusSource(PrometheusSettings(url=stub.url, **settings))
        source.stub = stub
        stack.append((stub, source))
        return source

    yield start
    for stub, source in stack:
        source.close()
        stub.__exit__()


VECTOR = [{"metric": {"revision": "2"}, "value": [1.7e9, "0.25"]}]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (ok("vector", VECTOR), 0.25),
        (ok("scalar", [1.7e9, "3"]), 3.0),
        (ok("vector", [{"metric": {}, "value": [1.7e9, "+Inf"]}]), float("inf")),
    ],
)
def test_scalar(serve, reply: Reply, expected: float) -> None:
    assert serve(lambda path, query: reply).query_scalar("q") == expected


@pytest.mark.parametrize(
    ("reply", "raised", "message"),
    [
        (ok("vector", []), NoDataError, "no series"),
        (ok("vector", [{"metric": {}, "value": [1.7e9, "NaN"]}]), NoDataError, "NaN"),
        (ok("vector", VECTOR * 2), QueryError, "expected one series, got 2"),
        (
            error(400, "bad_data", '1:5: parse error: unexpected "}"'),
            QueryError,
            'bad_data: 1:5: parse error: unexpected "}"',
        ),
        (error(422, "execution", "many-to-many matching not allowed"), QueryError, "422 execution: many-to-many"),
        (error(503, "timeout", "query timed out in expression evaluation"), QueryError, "503 timeout"),
        ((502, "<html>Bad Gateway</html>"), QueryError, "502: <html>Bad Gateway</html>"),
        ((200, "not json"), QueryError, "not its JSON API"),
        (ok("matrix", [{"metric": {}, "values": [[1.7e9, "1"]]}]), QueryError, "range vector"),
    ],
)
def test_scalar_failures_say_why(serve, reply: Reply, raised: type[Exception], message: str) -> None:
    source = serve(lambda path, query: reply)
    with pytest.raises(raised) as caught:
        source.query_scalar("sum(x)")
    assert message in str(caught.value)
    assert caught.value.query == "sum(x)"


def test_vector(serve) -> None:
    series = [
        {"metric": {"revision": "1"}, "value": [1.7e9, "1"]},
        {"metric": {"revision": "2"}, "value": [1.7e9, "2"]},
    ]
    source = serve(lambda path, query: ok("vector", series))
    assert source.query_vector("x") == [Sample({"revision": "1"}, 1.0), Sample({"revision": "2"}, 2.0)]
    source.stub.reply = lambda path, query: ok("vector", [])
    assert source.query_vector("x") == []


def test_no_retries_and_a_bounded_wait(serve) -> None:
    def slow(path: str, query: str) -> Reply:
        pace(1.0)  # a Prometheus slower than the client's timeout
        return ok("vector", VECTOR)

    source = serve(slow, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"did not answer within 0\.2s"):
        source.query_scalar("x")
    assert time.monotonic() - started < 0.9
    failing = serve(lambda path, query: error(503, "unavailable", "overloaded"))
    with pytest.raises(QueryError):
        failing.query_scalar("x")
    assert len(failing.stub.requests) == 1


def test_unreachable_prometheus_is_a_query_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = PrometheusSource(PrometheusSettings(url=f"http://127.0.0.1:{port}", timeout=1))
    with pytest.raises(QueryError, match="unreachable"):
        source.query_scalar("up")
    with pytest.raises(QueryError, match="unreachable"):
        source.validate("up")


def test_bearer_token_and_headers(serve, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    source = serve(
        lambda path, query: ok("vector", VECTOR), bearer_token_file=token_file, headers={"X-Scope-OrgID": "t1"}
    )
    source.query_scalar("x")
    token_file.write_text("rotated")
    source.query_scalar("x")
    sent = [headers for _, _, headers in source.stub.requests]
    assert [h["Authorization"] for h in sent] == ["Bearer first", "Bearer rotated"]
    assert sent[0]["X-Scope-OrgID"] == "t1"


def test_validate_with_parse_query(serve) -> None:
    def reply(path: str, query: str) -> Reply:
        assert path == "/api/v1/parse_query"
        return error(400, "bad_data", "unclosed left parenthesis") if "(" in query else ok("vector", [])

    source = serve(reply)
    assert source.validate("up") is None
    assert source.validate("sum(up") == "unclosed left parenthesis"


def test_validate_falls_back_to_an_instant_query_where_parse_query_is_missing(serve) -> None:
    def reply(path: str, query: str) -> Reply:
        if path == "/api/v1/parse_query":
            return 404, "404 page not found"
        if "on()" in query:
            return error(422, "execution", "many-to-many matching not allowed")
        if "(" in query:
            return error(400, "bad_data", "unclosed left parenthesis")
        return ok("vector", [])

    source = serve(reply)
    assert source.validate("up") is None
    assert source.validate("a * on() b") is None, "it parsed; running it failed"
    assert source.validate("sum(up") == "unclosed left parenthesis"
    assert [path for path, _, _ in source.stub.requests].count("/api/v1/query") == 3


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (error(400, "bad_data", "parse error"), 400),
        (error(422, "execution", "many-to-many"), 422),
        (error(503, "timeout", "query timed out"), 503),
        (ok("vector", VECTOR * 2), 200),
    ],
)
def test_query_errors_carry_the_status_of_the_answer(serve, reply: Reply, status: int) -> None:
    with pytest.raises(QueryError) as caught:
        serve(lambda path, query: reply).query_scalar("x")
    assert caught.value.status == status


def test_no_answer_has_no_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = PrometheusSource(PrometheusSettings(url=f"http://127.0.0.1:{port}", timeout=1))
    with pytest.raises(QueryError) as caught:
        source.query_scalar("up")
    assert caught.value.status is None
    source.close()
