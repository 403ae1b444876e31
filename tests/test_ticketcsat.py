"""CSAT per product (tables.ticketcsat): responses that name a ticket, joined with the
ticket's product across partitions, replaced per partition and minute."""

from __future__ import annotations

from tables.ticketcsat import CsatRefs, ProductCsat, TicketProducts
from tables.windows import MINUTE_US

M = 29_000_000  # a minute bucket


def at(minute: int, second: int = 0) -> int:
    return (M + minute) * MINUTE_US + second * 1_000_000


def test_join_across_partitions_counts_each_response_once() -> None:
    refs, products = CsatRefs(), TicketProducts()
    products.put("t1", at(0), "router")
    products.put("t2", at(1), "modem")
    refs.add("s1", at(5), "t1", True)
    refs.add("s2", at(5, 30), "t1", False)
    refs.add("s3", at(6), "t2", True)
    refs.add("s4", at(6), "t9", True)  # a ticket without product: no product's CSAT
    refs.add("s1", at(5), "t1", True)  # the same response applied again: once
    view = ProductCsat()
    # the survey partition (1) and the ticket partition (0) write their minutes
    for m in sorted(refs.take_dirty()):
        view.replace_refs(1, m, refs.wire(m))
    for m in sorted(products.take_dirty()):
        view.replace_products(0, m, products.wire(m))
    assert view.counts(M, M + 10) == {"router": (2, 1), "modem": (1, 1)}
    assert view.counts(M + 6, M + 10) == {"modem": (1, 1)}
    # a partition's minute written again (a rebalance) replaces, never adds
    view.replace_refs(1, M + 5, refs.wire(M + 5))
    assert view.counts(M, M + 10)["router"] == (2, 1)
    # a forgotten ticket leaves the join
    products.drop("t2", at(1))
    for m in products.take_dirty():
        view.replace_products(0, m, products.wire(m))
    assert view.counts(M, M + 10) == {"router": (2, 1)}


def test_refs_survive_their_records_and_expire() -> None:
    refs = CsatRefs()
    refs.add("s1", at(0), "t1", True)
    refs.add("s2", at(3), "t1", False)
    again = CsatRefs()
    again.load(refs.records())
    assert again.wire(M) == refs.wire(M) and again.wire(M + 3) == refs.wire(M + 3)
    again.expire(at(2))
    assert again.wire(M) is None and again.wire(M + 3) is not None
