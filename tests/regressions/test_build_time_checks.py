"""Bad input is refused when the object or the flow is built, naming the option
(issue 13, item 5), never later, deep inside a running stage, or never at all."""

from __future__ import annotations

from typing import Any

import pytest

import flowstage
from flowstage import (
    BroadcastDispatcher,
    Consumer,
    EventSink,
    Flow,
    PartitionDispatcher,
    StageGroup,
)
from flowstage.testing import wait_until

from ..stages import Counter, Doubler, Forwarder


class Tagged(Forwarder):
    """Declares an option of its own, which its handle_subscribe reads."""

    subscription_options = frozenset({"tag"})

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.tags: list[Any] = []

    def handle_subscribe(self, kind: Any, options: Any, from_: Any) -> None:
        self.tags.append(options.get("tag"))


# -- subscription options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "suggestion"),
    [({"max_demnd": 5}, "max_demand"), ({"cancle": "temporary"}, "cancel")],
)
def test_a_misspelled_subscription_option_raises(options: dict[str, Any], suggestion: str) -> None:
    producer, consumer = Counter(), Forwarder()
    match = (
        rf"option must be one of .*got: '{next(iter(options))}' \(did you mean '{suggestion}'\?\)"
    )
    with pytest.raises(TypeError, match=match):
        consumer.subscribe(producer, **options)
    with pytest.raises(TypeError, match=match):
        Forwarder(subscribe_to=[(producer, options)])
    with pytest.raises(TypeError, match=match):
        flowstage.stream([(producer, options)])
    with pytest.raises(TypeError, match=match):
        EventSink().subscribe(producer, **options)


def test_dispatcher_options_are_accepted_only_by_their_dispatcher() -> None:
    Forwarder().subscribe(Counter(dispatcher=PartitionDispatcher(2)), partition=0)
    Forwarder().subscribe(Counter(dispatcher=BroadcastDispatcher()), selector=bool)
    with pytest.raises(TypeError, match="got: 'partition'"):
        Forwarder().subscribe(Counter(), partition=0)
    with pytest.raises(TypeError, match="got: 'selector'"):
        Forwarder().subscribe(
            Counter(dispatcher=PartitionDispatcher(2)), partition=0, selector=bool
        )


@pytest.mark.anyio
async def test_options_a_stage_declares_reach_its_handle_subscribe() -> None:
    async with StageGroup() as group:
        producer = group.start(Counter())
        consumer = group.start(Tagged())
        consumer.subscribe(producer, tag="mine", max_demand=1)
        await wait_until(lambda: consumer.tags)
        assert consumer.tags == ["mine"]
        group.cancel()
    with pytest.raises(TypeError, match="got: 'tag'"):
        Forwarder().subscribe(Counter(), tag="mine")


def test_a_stage_cannot_subscribe_to_itself() -> None:
    doubler = Doubler()
    with pytest.raises(ValueError, match="a stage cannot subscribe to itself"):
        doubler.subscribe(doubler)


@pytest.mark.parametrize(
    "entry",
    [(Counter(), 3), (Counter(),), (Counter(), {"max_demand": 1}, "extra"), 3, "producer"],
)
def test_subscribe_to_entries_are_checked_when_the_stage_is_built(entry: Any) -> None:
    with pytest.raises(TypeError, match=r"subscribe_to|can only subscribe to a producer"):
        Consumer(subscribe_to=[entry])


def test_subscribe_to_options_are_checked_when_the_stage_is_built() -> None:
    with pytest.raises(ValueError, match="max_demand must be an integer >= 1, got: 0"):
        Forwarder(subscribe_to=[(Counter(), {"max_demand": 0})])
    with pytest.raises(ValueError, match="partition"):
        Forwarder(subscribe_to=[(Counter(dispatcher=PartitionDispatcher(2)), {"partition": 7})])


def test_subscribe_to_must_be_a_list() -> None:
    with pytest.raises(TypeError, match="subscribe_to must be a list"):
        Consumer(subscribe_to=Counter())  # type: ignore[arg-type]


# -- flows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Flow.from_stages([1, 2]),
        lambda: Flow.from_stages([Forwarder()]),
        lambda: Flow.from_iterable([1]).through_stages([None]),
        lambda: Flow.from_iterable([1]).through_stages([Counter()]),
        lambda: Flow.from_iterable([1]).into_stages([None]),
        lambda: Flow.from_iterable([1]).into_stages([Counter()]),
    ],
)
def test_stages_given_to_a_flow_are_checked_when_it_is_built(build: Any) -> None:
    with pytest.raises(TypeError, match=r"(producers|producer_consumers|consumers) must be a list"):
        build()


def test_counts_too_large_for_python_are_refused() -> None:
    flow = Flow.from_iterable([1]).reduce(list, lambda acc, e: [*acc, e])
    with pytest.raises(ValueError, match=r"Flow.take_sort: n must be an integer between 1 and"):
        flow.take_sort(2**70)
    with pytest.raises(ValueError, match=r"Flow.partition: max_demand must be an integer between"):
        Flow.from_iterable([1]).partition(max_demand=2**70)


def test_partition_of_checks_the_number_of_partitions() -> None:
    with pytest.raises(TypeError, match=r"partition_of: n must be an integer >= 1, got: 1.5"):
        flowstage.partition_of(1, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"partition_of: n must be an integer >= 1, got: 0"):
        flowstage.partition_of(1, 0)
    assert flowstage.partition_of(1, 1) == 0


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: Flow.from_iterable(5), "Flow.from_iterable"),
        (lambda: Flow.from_async_iterable(5), "Flow.from_async_iterable"),
        (lambda: Flow.from_iterables([5]), "Flow.from_iterables"),
    ],
)
def test_errors_name_the_function_called(build: Any, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{name}: "):
        build()


def no_arguments() -> list[int]:
    return []


@pytest.mark.parametrize(
    ("build", "call"),
    [
        (lambda f: f.map(lambda: 1), "Flow.map"),
        (lambda f: f.filter(lambda a, b: a), "Flow.filter"),
        (lambda f: f.flat_map(no_arguments), "Flow.flat_map"),
        (lambda f: f.reduce(list, lambda acc: acc), "Flow.reduce"),
        (lambda f: f.group_by(lambda: 1), "Flow.group_by"),
        (lambda f: f.uniq_by(lambda a, b: a), "Flow.uniq_by"),
    ],
)
def test_callback_arity_is_checked_when_the_flow_is_built(build: Any, call: str) -> None:
    flow = Flow.from_iterable(range(200), stages=2, max_demand=10)
    with pytest.raises(TypeError, match=rf"^{call}: \w+ must be a callable taking \d positional"):
        build(flow)
