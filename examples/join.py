"""A bounded join: orders with their customers.

Usage: python examples/join.py [inner|left_outer|right_outer|full_outer]

Both sides are partitioned by customer id into the join layer; each join stage
keeps every event it has seen per key (the data must be bounded) and emits
``join(order, customer)`` for every match. The outer modes also emit
``join(order, None)`` / ``join(None, customer)`` for keys never matched.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from flowstage.flow import Flow

CUSTOMERS = [
    {"id": 1, "name": "Ada"},
    {"id": 2, "name": "Grace"},
    {"id": 3, "name": "Edsger"},
]

ORDERS = [
    {"order": 100, "customer": 1, "total": 30},
    {"order": 101, "customer": 2, "total": 12},
    {"order": 102, "customer": 1, "total": 7},
    {"order": 103, "customer": 9, "total": 99},
]


def describe(order: dict[str, Any] | None, customer: dict[str, Any] | None) -> tuple[Any, ...]:
    return (
        order and order["order"],
        customer and customer["name"],
        order and order["total"],
    )


async def join_orders(
    orders: list[dict[str, Any]],
    customers: list[dict[str, Any]],
    mode: str = "left_outer",
    stages: int = 2,
) -> list[tuple[Any, ...]]:
    """``(order id, customer name, total)`` for every order/customer pair."""
    flow = Flow.bounded_join(
        mode,
        Flow.from_iterable(orders, stages=1),
        Flow.from_iterable(customers, stages=1),
        lambda o: o["customer"],
        lambda c: c["id"],
        describe,
        stages=stages,
    )
    return sorted(await flow.to_list(), key=repr)


async def totals_per_customer(
    orders: list[dict[str, Any]], customers: list[dict[str, Any]]
) -> list[tuple[str, int]]:
    """A join followed by a partitioned reduce: revenue per customer name."""

    def add(acc: dict[str, int], row: tuple[Any, ...]) -> dict[str, int]:
        _order, name, total = row
        acc[name] = acc.get(name, 0) + total
        return acc

    joined = Flow.bounded_join(
        "inner",
        Flow.from_iterable(orders, stages=1),
        Flow.from_iterable(customers, stages=1),
        lambda o: o["customer"],
        lambda c: c["id"],
        describe,
        stages=2,
    )
    return sorted(await joined.partition(stages=2, key=("elem", 1)).reduce(dict, add).to_list())


def main(mode: str = "left_outer") -> None:
    rows = anyio.run(join_orders, ORDERS, CUSTOMERS, mode)
    print(f"{mode} join of orders and customers (order, customer, total):")
    for row in rows:
        print("  ", row)
    print("revenue per customer:", anyio.run(totals_per_customer, ORDERS, CUSTOMERS))


if __name__ == "__main__":
    main(*sys.argv[1:2])
