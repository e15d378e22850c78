"""When the watch's copy of a resource can stand in for a fresh read: once it holds our own last write."""

from __future__ import annotations

from modelrollout.engine.freshness import WatchFreshness

A = ("stubs", "ns", "a")
B = ("stubs", "other", "b")


def test_untrusted_until_our_write_is_delivered_then_trusted_through_later_events() -> None:
    freshness = WatchFreshness()
    assert not freshness.trusted(A), "nothing written yet: another process may have written last"
    freshness.delivered(A, "5")
    assert not freshness.trusted(A)
    freshness.wrote(A, "7")
    freshness.delivered(A, "6")
    assert not freshness.trusted(A), "an older copy"
    freshness.delivered(A, "7")
    assert freshness.trusted(A)
    freshness.delivered(A, "9")
    assert freshness.trusted(A), "events after ours are newer"
    freshness.wrote(A, "10")
    assert not freshness.trusted(A), "a newer write not yet delivered"


def test_a_write_delivered_before_its_answer_is_read_is_trusted() -> None:
    freshness = WatchFreshness()
    freshness.delivered(A, "7")
    freshness.wrote(A, "7")
    assert freshness.trusted(A)


def test_a_version_never_delivered_leaves_it_untrusted_until_the_next_write_is() -> None:
    freshness = WatchFreshness()
    freshness.wrote(A, "7")
    freshness.delivered(A, "8")  # a re-list past ours, or kopf merged ours into a newer event
    assert not freshness.trusted(A)
    freshness.wrote(A, "9")
    freshness.delivered(A, "9")
    assert freshness.trusted(A)


def test_a_gained_shard_and_a_deleted_resource_are_read_afresh() -> None:
    freshness = WatchFreshness()
    for key in (A, B):
        freshness.wrote(key, "1")
        freshness.delivered(key, "1")
    freshness.doubt(lambda namespace: namespace == "ns")
    assert not freshness.trusted(A), "another replica may have written it last"
    assert freshness.trusted(B)
    freshness.delivered(A, "1")
    assert not freshness.trusted(A), "only a write of ours, delivered, trusts it again"
    freshness.forget(B)
    assert not freshness.trusted(B)
