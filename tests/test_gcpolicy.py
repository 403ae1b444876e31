"""The worker's garbage-collector policy (stream_app/worker/gcpolicy.py) with a fake clock."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream_app.worker.gcpolicy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clean_gc() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_survivors_are_frozen_on_schedule_and_a_frozen_cycle_waits_for_the_full_run(
    clean_gc: None,
) -> None:
    now = [0.0]
    policy = GcPolicy(freeze_seconds=1.0, full_seconds=60.0, clock=lambda: now[0])
    keep = [Node() for _ in range(1000)]
    now[0] = 0.5
    policy.tick()
    assert (policy.freezes, gc.get_freeze_count()) == (0, 0)

    now[0] = 1.0
    policy.tick()
    assert policy.freezes == 1
    frozen = gc.get_freeze_count()
    assert frozen >= len(keep)  # the live state no longer costs full collections

    # Garbage cycles among young objects are collected before a freeze...
    young = cycle()
    now[0] = 2.0
    policy.tick()
    assert young() is None
    # ...but one that became garbage after its objects were frozen waits:
    alive = [Node(), Node()]
    alive[0].other, alive[1].other = alive[1], alive[0]
    late = weakref.ref(alive[0])
    now[0] = 3.0
    policy.tick()
    del alive
    gc.collect()
    assert late() is not None
    # ...until the periodic full collection.
    now[0] = 60.0
    policy.tick()
    assert policy.full_collections == 1
    assert late() is None
    assert gc.get_freeze_count() >= len(keep)


def test_installed_policy_leaves_full_collections_to_its_schedule(clean_gc: None) -> None:
    policy = GcPolicy(freeze_seconds=1.0, full_seconds=60.0, clock=lambda: 0.0)
    old = policy.install()
    try:
        assert gc.get_threshold()[:2] == old[:2]  # young collections as before
        fulls = gc.get_stats()[2]["collections"]
        young = gc.get_stats()[0]["collections"]
        # Many young collections promoting survivors (what a catching-up batch does):
        # under the default thresholds this starts full collections, now none.
        keep = [[Node() for _ in range(100)] for _ in range(3000)]
        assert gc.get_stats()[0]["collections"] > young + 100
        assert gc.get_stats()[2]["collections"] == fulls
        del keep
    finally:
        gc.set_threshold(*old)
    control = [[Node() for _ in range(100)] for _ in range(3000)]
    assert gc.get_stats()[2]["collections"] > fulls  # the control: the defaults do collect
    del control
