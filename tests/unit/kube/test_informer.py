"""The informer's loop without a server: list, watch from the list's version, list again when the version is
gone, and the watch stream cut into lines wherever its chunks end."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from modelrollout.kube import informer
from modelrollout.kube.informer import Informer, WatchedKind


def item(name: str, version: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(version), "managedFields": [{}]}}


class Stream:
    """A watch response whose chunks end in the middle of lines and of characters."""

    def __init__(self, events: list[dict[str, Any]], *, then_block: threading.Event | None = None) -> None:
        text = "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events).encode()
        self.chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
        self.then_block = then_block
        self.closed = threading.Event()

    def stream(self, amount: int, decode_content: bool) -> Iterator[bytes]:
        del amount, decode_content
        yield from self.chunks
        if self.then_block is not None:
            self.then_block.set()
            self.closed.wait(30)
            raise ConnectionError("closed under the reader")

    def shutdown(self) -> None:
        self.closed.set()

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class Cluster:
    """Answers the list calls: the lists in order, and the watches in order."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[Stream | client.ApiException]) -> None:
        self.lists, self.watches = lists, watches
        self.calls: list[dict[str, Any]] = []

    def list_all(self, **options: Any) -> Any:
        self.calls.append(options)
        if options.get("watch"):
            answer = self.watches.pop(0)
            if isinstance(answer, client.ApiException):
                raise answer
            return answer
        items = self.lists[0]
        version = max((int(i["metadata"]["resourceVersion"]) for i in items), default=1)
        start = int(options.get("_continue") or 0)
        page = items[start : start + 1]  # a page of one, to follow the continue tokens
        more = start + 1 < len(items)
        if not more:
            self.lists.pop(0)
        metadata = {"resourceVersion": str(version), **({"continue": str(start + 1)} if more else {})}
        return SimpleNamespace(data=json.dumps({"metadata": metadata, "items": page}))


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def replaced(self, plural: str, namespace: str | None, items: list[dict[str, Any]], version: str) -> None:
        self.seen.append(("list", (sorted(i["metadata"]["name"] for i in items), version)))
        assert all("managedFields" not in i["metadata"] for i in items)

    def changed(self, plural: str, event: str, obj: dict[str, Any]) -> None:
        self.seen.append((event, obj["metadata"]["name"]))


def test_it_lists_watches_from_there_lists_again_when_gone_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    blocked = threading.Event()
    cluster = Cluster(
        lists=[[item("a", 3), item("c", 2)], [item("b", 9)], [item("b", 9)]],
        watches=[
            Stream(
                [
                    {"type": "ADDED", "object": item("b", 5)},
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
                    {"type": "DELETED", "object": item("a", 8)},
                ]
            ),
            Stream([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}]),
            client.ApiException(status=410, reason="Gone"),
            Stream([{"type": "MODIFIED", "object": item("b", 10) | {"note": "naïve ☃"}}], then_block=blocked),
        ],
    )
    kind = WatchedKind("deployments", lambda _: cluster, "list_all", "list_namespaced")
    sink = Sink()
    one = Informer(Any, kind, sink, label_selector="owner", watch_seconds=30)  # type: ignore[arg-type]
    one.start()
    assert blocked.wait(30)
    one.stop()
    one.join(30)
    assert not one.alive()
    assert sink.seen == [
        ("list", (["a", "c"], "3")),
        ("ADDED", "b"),
        ("DELETED", "a"),
        ("list", (["b"], "9")),
        ("list", (["b"], "9")),
        ("MODIFIED", "b"),
    ]
    assert not caplog.records, "a version gone is no failure: listed again at once, nothing logged"
    watches = [c for c in cluster.calls if c.get("watch")]
    assert [c["resource_version"] for c in watches] == ["3", "8", "9", "9"], "on from the last seen; from each new list"
    assert all(c["label_selector"] == "owner" and c["allow_watch_bookmarks"] for c in watches)


def test_the_owned_kinds_name_their_list_calls_in_the_official_client() -> None:
    for kind in (informer.DEPLOYMENTS, informer.SERVICES, informer.CONTROLLER_REVISIONS, informer.JOBS):
        api = kind.api(client.ApiClient())
        assert callable(getattr(api, kind.list_all))
        assert callable(getattr(api, kind.list_namespaced))
