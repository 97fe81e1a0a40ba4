"""``Flow``: an immutable, typed description of a parallel computation.

Nothing runs until the flow is consumed (``stream``, ``async for``, ``to_list``,
``run``, ``start``, ``into_stages``). Every builder method validates its arguments
(raising ``TypeError``/``ValueError`` right away, with a hint), records one
operation and returns a new ``Flow``.

Layers: every source (``from_*``), ``partition``, ``shuffle``, ``merge``,
``departition``, ``take_sort``, the joins and ``through_stages`` start a new layer
of ``stages`` stages. The operations added after it are fused and run inside each
stage of that layer, in three phases: per-event mappers (``map``, ``filter``, ...),
at most one reducer (``reduce``, ``emit_and_reduce``, ``group_by*``), and the
trigger emission (``on_trigger`` / ``emit``). There is no ordering guarantee across
the stages of a layer; within one stage the order of each batch is kept.

Callbacks may be plain functions or ``async def`` functions; all accumulator
callbacks take the accumulator first: ``f(acc, event)``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Never, TypeVar, cast, overload

from .._options import (
    arity,
    check_callable,
    check_choice,
    check_initial,
    check_positive_int,
    default_stages,
    invalid,
    is_async_callable,
    validate_demand,
)
from .._push import PushHandle
from .._push_buffer import OVERFLOWS, Overflow
from .._stage import Stage
from ..executors import AsyncForIterator, Executor, FlowIterator, RunningFlow, resolve
from ..messages import AckSource, Message, Sink
from ..plan import (
    JOIN_MODES,
    DepartitionTag,
    Emit,
    GroupBy,
    MapBatch,
    Mapper,
    MergeSorted,
    OnTrigger,
    Operation,
    Plan,
    Reduce,
    TakeSortTag,
    Uniq,
    Window,
    identity,
)
from ._compile import (
    CompiledFlow,
    DepartitionInput,
    FlowsInput,
    FlowSpec,
    JoinInput,
    KeySpec,
    LayerOptions,
    MessagesInput,
    SourceInput,
    ThroughInput,
    compile_flow,
)

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterable,
        Awaitable,
        Callable,
        Iterable,
        Sequence,
    )
    from contextlib import AbstractAsyncContextManager

    from ..plan import JoinMode
    from ..plan import Sink as OutputKind
    from ..statistics import FlowStatistics

__all__ = ["Flow", "FromPush", "ReducedFlow"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")

_REDUCE_AGAIN = (
    "cannot call group_by/reduce/emit_and_reduce on a flow after another "
    "group_by/reduce/emit_and_reduce operation (these can only be called once per "
    "layer; for further transformations use on_trigger, or partition() again)"
)


def _needs_reduce(what: str) -> str:
    return (
        f"{what} must be called after a group_by/reduce/emit_and_reduce operation "
        "as it works on the accumulated state"
    )


def _options(
    what: str, stages: object, max_demand: object, min_demand: object, *, one: bool = False
) -> LayerOptions:
    if one:
        n = 1
    elif stages is None:
        n = default_stages()
    else:
        n = check_positive_int("stages", stages, what)
    mx, mn = validate_demand(max_demand, min_demand, what)
    return LayerOptions(n, mx, mn)


def _window(what: str, window: object) -> Window:
    if window is None:
        return Window()
    if not isinstance(window, Window):
        raise TypeError(invalid("window", "a Window (see flowstage.Window)", window, what))
    return window


def _not_a_flow(what: str, obj: object) -> None:
    if isinstance(obj, Flow):
        raise TypeError(
            f"passing a Flow to {what} is not supported. Did you mean Flow.partition or Flow.merge?"
        )


def _key_spec(key: object) -> KeySpec:
    if key is None or callable(key):
        return cast("KeySpec", key)
    if isinstance(key, tuple) and len(key) == 2:
        tag, val = key
        if tag == "elem" and isinstance(val, int) and not isinstance(val, bool) and val >= 0:
            return ("elem", val)
        if tag == "key":
            return ("key", val)
    raise ValueError(
        invalid(
            "key",
            "a callable, ('elem', index) with index >= 0 or ('key', key)",
            key,
            "Flow.partition",
        )
    )


def _callback(what: str, option: str, fn: object, args: int) -> Callable[..., Any]:
    """``fn`` checked to be callable with ``args`` positional arguments (when its
    signature can be read)."""
    f = check_callable(option, fn, what)
    arity(f, (args,), option, what)
    return f


class Flow(Generic[T]):
    """An immutable description of a parallel flow of events of type ``T``.

    Build one with ``Flow.from_iterable`` and friends; do not call the
    constructor. See the module docstring for the layer model. Nothing runs until
    the flow is consumed; every way of consuming it takes ``executor=`` (the local
    executor by default, see :mod:`flowstage.executors`).
    """

    __slots__ = ("spec",)

    #: What the flow says, as records (see :class:`~flowstage.flow.FlowSpec`).
    spec: FlowSpec

    #: A flow fed by pushing events into it: ``flow, push = Flow.from_push[str]()``
    #: (see :class:`~flowstage.flow.FromPush`).
    from_push: ClassVar[FromPush[Any]]

    def __init__(self, spec: FlowSpec) -> None:
        object.__setattr__(self, "spec", spec)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Flow objects are immutable; builder methods return new flows")

    def __repr__(self) -> str:
        spec = self.spec
        ops = ", ".join(type(o).__name__ for o in spec.ops)
        return f"<Flow {type(spec.producers).__name__} stages={spec.options.stages} [{ops}]>"

    # -- sources -------------------------------------------------------------------

    @staticmethod
    def _source(
        what: str,
        kind: Literal["iterable", "async iterable", "stage", "push"],
        items: list[Any],
        stages: object,
        max_demand: object,
        min_demand: object,
        window: object,
    ) -> Flow[Any]:
        return Flow(
            FlowSpec(
                SourceInput(kind, tuple(items), what.removeprefix("Flow.")),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    @staticmethod
    def from_iterable(
        iterable: Iterable[U],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[U]:
        """A flow over one iterable (one producer), then a layer of ``stages``."""
        what = "Flow.from_iterable"
        _not_a_flow(what, iterable)
        if not hasattr(iterable, "__iter__"):
            raise TypeError(invalid("iterable", "an iterable", iterable, what))
        return Flow._source(what, "iterable", [iterable], stages, max_demand, min_demand, window)

    @staticmethod
    def from_iterables(
        iterables: Sequence[Iterable[U]],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[U]:
        """A flow over several iterables: one producer per iterable, each stage of
        the layer subscribed to all of them."""
        what = "Flow.from_iterables"
        items = _nonempty_list(what, "iterables", iterables)
        for it in items:
            _not_a_flow(what, it)
            if not hasattr(it, "__iter__"):
                raise TypeError(invalid("iterables", "a list of iterables", it, what))
        return Flow._source(what, "iterable", items, stages, max_demand, min_demand, window)

    @staticmethod
    def from_async_iterable(
        iterable: AsyncIterable[U],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[U]:
        """A flow over one async iterable."""
        what = "Flow.from_async_iterable"
        _not_a_flow(what, iterable)
        if not hasattr(iterable, "__aiter__"):
            raise TypeError(
                invalid("iterable", "an async iterable", iterable, what)
                + " (use Flow.from_iterable for plain iterables)"
            )
        return Flow._source(
            what, "async iterable", [iterable], stages, max_demand, min_demand, window
        )

    @staticmethod
    def from_async_iterables(
        iterables: Sequence[AsyncIterable[U]],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[U]:
        """A flow over several async iterables, one producer each."""
        what = "Flow.from_async_iterables"
        items = _nonempty_list(what, "iterables", iterables)
        for it in items:
            _not_a_flow(what, it)
            if not hasattr(it, "__aiter__"):
                raise TypeError(
                    invalid("iterables", "a list of async iterables", it, what)
                    + " (use Flow.from_iterables for plain iterables)"
                )
        return Flow._source(what, "async iterable", items, stages, max_demand, min_demand, window)

    @staticmethod
    def from_messages(
        source: AckSource[U],
        *,
        max_unacked: int = 10_000,
        on_error: Literal["nack", "raise"] = "nack",
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[Message[U]]:
        """A flow over an acknowledged source (see :mod:`flowstage.messages`): its
        events are the :class:`~flowstage.messages.Message` envelopes the source
        delivers, and each message is acknowledged once everything the flow derived
        from it reached the end of the flow (and was written by the flow's sink, with
        :meth:`write_to`): never before, so a crash or a cancelled flow leaves it
        with the broker, which delivers it again (at-least-once).

        Args:
            max_unacked: at most this many messages delivered and not yet
                acknowledged or nacked; the source waits for acknowledgements
                beyond it. A reducer holds its messages until its window emits, so
                use processing-time windows (``Window.periodic``,
                ``trigger_periodically``) on an endless source.
            on_error: a callback raising on an event: ``"nack"`` (the default) nacks
                the messages the event comes from (the source retries them or moves
                them to a dead-letter stream) and the flow goes on; ``"raise"`` fails
                the flow (its messages are redelivered to the next consumer).

        Lineage cannot be followed through joins, ``departition``, ``take_sort``,
        ``uniq``, count and event-time windows, custom triggers and
        ``through_stages``: a flow over acknowledged messages that uses them fails
        when it is run, naming them.
        """
        what = "Flow.from_messages"
        _not_a_flow(what, source)
        if not isinstance(source, AckSource):
            raise TypeError(
                invalid(
                    "source",
                    "an acknowledged source (open, receive, ack, nack, aclose and a name; "
                    "see flowstage.messages.AckSource)",
                    source,
                    what,
                )
            )
        limit = check_positive_int("max_unacked", max_unacked, what)
        check_choice("on_error", on_error, ("nack", "raise"), what)
        return Flow(
            FlowSpec(
                MessagesInput(source, limit, on_error == "nack"),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    @staticmethod
    def from_stages(
        producers: Sequence[object],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[Any]:
        """A flow over already running producers of the stage engine. The flow's
        input ends when they all finish normally."""
        what = "Flow.from_stages"
        items = _stages(what, "producers", producers, ("producer", "producer_consumer"))
        return Flow._source(what, "stage", items, stages, max_demand, min_demand, window)

    @staticmethod
    def merge(
        flows: Sequence[Flow[U]] | Flow[U],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> Flow[U]:
        """A new layer fed by demand from the last layers of ``flows``.

        A merge without operations of its own is compiled away, so
        ``Flow.merge([f1, f2]).partition(...)`` partitions both flows into one
        layer."""
        what = "Flow.merge"
        fl = _flows(what, flows)
        return Flow(
            FlowSpec(
                FlowsInput(fl, "demand", "merge"),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    def partition(
        self,
        *,
        stages: int | None = None,
        key: Callable[[T], Any] | tuple[str, Any] | None = None,
        hash: Callable[[T], tuple[Any, int] | None] | None = None,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[T]:
        """A new layer of ``stages`` stages; events are routed by hash, so equal
        keys always reach the same stage.

        ``key`` is a callable, ``("elem", i)`` (``event[i]``) or ``("key", k)``
        (``event[k]``); the default key is the event. ``hash(event)`` returns
        ``(event, partition)`` or ``None`` (drop) and overrides ``key``. The
        default hash (``flowstage.partition_of``) is stable across processes.
        With ``stages=1`` demand dispatch is used and ``key``/``hash`` are ignored.
        """
        what = "Flow.partition"
        if hash is not None and not callable(hash):
            raise TypeError(
                invalid(
                    "hash",
                    "a function that receives an event and returns a tuple with the "
                    "event and its partition",
                    hash,
                    what,
                )
            )
        return Flow(
            FlowSpec(
                FlowsInput((self,), "partition", "partition", _key_spec(key), hash),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    def shuffle(
        self,
        *,
        stages: int | None = None,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[T]:
        """A new layer fed by demand (redistributes; does not actively shuffle)."""
        what = "Flow.shuffle"
        return Flow(
            FlowSpec(
                FlowsInput((self,), "demand", "shuffle"),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    def through_stages(
        self,
        producer_consumers: Sequence[object],
        *,
        stages: int | None = None,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[Any]:
        """Pass this flow's output through running producer-consumers; a new layer
        consumes from them. They must stop themselves when their producers finish
        (recommended for unbounded flows only)."""
        what = "Flow.through_stages"
        items = _stages(what, "producer_consumers", producer_consumers, ("producer_consumer",))
        return Flow(
            FlowSpec(
                ThroughInput(self, tuple(items)),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    # -- per-event operations ----------------------------------------------------------

    def _has_reduce(self) -> bool:
        return any(isinstance(o, Reduce | GroupBy) for o in self.spec.ops)

    def _has_on_trigger(self) -> bool:
        return any(isinstance(o, OnTrigger | Emit) for o in self.spec.ops)

    def _add(self, op: Operation) -> Flow[Any]:
        return Flow(replace(self.spec, ops=(*self.spec.ops, op)))

    def _add_reduced(self, op: Operation) -> ReducedFlow[Any, Any]:
        return ReducedFlow(replace(self.spec, ops=(*self.spec.ops, op)))

    def _mapper(self, kind: Any, fn: object) -> Flow[Any]:
        f = _callback(f"Flow.{kind}", "fn", fn, 1)
        if self._has_reduce():
            raise ValueError(
                f"{kind} cannot be called after group_by/reduce/emit_and_reduce operation "
                "(use on_trigger to further emit events or the accumulated state, "
                "or partition() again to start a new layer)"
            )
        return self._add(Mapper(kind, f))

    @overload
    def map(self, fn: Callable[[T], Awaitable[U]]) -> Flow[U]: ...

    @overload
    def map(self, fn: Callable[[T], U]) -> Flow[U]: ...

    def map(self, fn: Callable[[T], Any]) -> Flow[Any]:
        """Apply ``fn`` to every event (an ``async def`` function is awaited)."""
        return self._mapper("map", fn)

    @overload
    def flat_map(self, fn: Callable[[T], Awaitable[Iterable[U]]]) -> Flow[U]: ...

    @overload
    def flat_map(self, fn: Callable[[T], Iterable[U]]) -> Flow[U]: ...

    def flat_map(self, fn: Callable[[T], Any]) -> Flow[Any]:
        """Apply ``fn`` (returning an iterable) and flatten one level."""
        return self._mapper("flat_map", fn)

    def filter(self, fn: Callable[[T], object]) -> Flow[T]:
        """Keep events for which ``fn`` is truthy."""
        return self._mapper("filter", fn)

    def reject(self, fn: Callable[[T], object]) -> Flow[T]:
        """Drop events for which ``fn`` is truthy."""
        return self._mapper("reject", fn)

    def map_values(self: Flow[tuple[K, V]], fn: Callable[[V], U]) -> Flow[tuple[K, U]]:
        """For ``(key, value)`` events: ``(key, fn(value))``."""
        return self._mapper("map_values", fn)

    def map_batch(self, fn: Callable[[list[T]], list[U]]) -> Flow[U]:
        """Apply ``fn`` to each raw batch a stage receives (it returns a list).
        Must come first in the layer, before windows see the events."""
        f = _callback("Flow.map_batch", "fn", fn, 1)
        if any(not isinstance(o, MapBatch) for o in self.spec.ops):
            raise ValueError(
                "map_batch can only be called at the beginning of the stage/partition, "
                "before any map or reduce operation (call partition() or shuffle() "
                "first to start a new layer)"
            )
        return self._add(MapBatch(f))

    def uniq(self) -> Flow[T]:
        """Drop events already seen (per stage, per window). First occurrences
        pass through as they arrive; partition by the same key for global
        uniqueness."""
        return self._uniq(None)

    def uniq_by(self, key: Callable[[T], Any]) -> Flow[T]:
        """Like :meth:`uniq`, comparing ``key(event)``."""
        return self._uniq(_callback("Flow.uniq_by", "key", key, 1))

    def _uniq(self, key: Callable[[Any], Any] | None) -> Flow[Any]:
        if self._has_reduce():
            raise ValueError(
                "uniq/uniq_by cannot be called after group_by/reduce/emit_and_reduce "
                "(partition() again to start a new layer)"
            )
        return self._add(Uniq(key))

    # -- reducing and emitting ---------------------------------------------------------

    def _reducer(
        self, what: str, initial: object, fn: object, emits: bool
    ) -> ReducedFlow[Any, Any]:
        call = f"Flow.{what}"
        init = check_initial(initial, call)
        f = _callback(call, "fn", fn, 2)
        if self._has_reduce():
            raise ValueError(_REDUCE_AGAIN)
        return self._add_reduced(Reduce(init, f, emits))

    # The accumulator's type says what a trigger emits without on_trigger/emit: a
    # dict its (key, value) pairs, a list or set its items.
    @overload
    def reduce(
        self,
        initial: Callable[[], dict[K, V]],
        fn: Callable[[dict[K, V], T], dict[K, V] | Awaitable[dict[K, V]]],
    ) -> ReducedFlow[tuple[K, V], dict[K, V]]: ...

    @overload
    def reduce(
        self,
        initial: Callable[[], list[U]],
        fn: Callable[[list[U], T], list[U] | Awaitable[list[U]]],
    ) -> ReducedFlow[U, list[U]]: ...

    @overload
    def reduce(
        self,
        initial: Callable[[], set[U]],
        fn: Callable[[set[U], T], set[U] | Awaitable[set[U]]],
    ) -> ReducedFlow[U, set[U]]: ...

    @overload
    def reduce(
        self, initial: Callable[[], A], fn: Callable[[A, T], A | Awaitable[A]]
    ) -> ReducedFlow[Any, A]: ...

    def reduce(
        self, initial: Callable[[], Any], fn: Callable[[Any, T], Any]
    ) -> ReducedFlow[Any, Any]:
        """Reduce each window of each stage: ``acc = fn(acc, event)`` starting
        from ``initial()``. Without ``on_trigger``/``emit``, triggers emit the
        accumulator's items (a dict gives ``(key, value)`` pairs)."""
        return self._reducer("reduce", initial, fn, False)

    def emit_and_reduce(
        self,
        initial: Callable[[], A],
        fn: Callable[[A, T], tuple[Iterable[Any], A] | Awaitable[tuple[Iterable[Any], A]]],
    ) -> ReducedFlow[Any, A]:
        """Like :meth:`reduce`, but ``fn(acc, event)`` returns
        ``(events_to_emit_now, acc)``; the events are emitted in order."""
        return self._reducer("emit_and_reduce", initial, fn, True)

    @overload
    def group_by(
        self, key: Callable[[T], K], value: None = None
    ) -> ReducedFlow[tuple[K, list[T]], dict[K, list[T]]]: ...

    @overload
    def group_by(
        self, key: Callable[[T], K], value: Callable[[T], V]
    ) -> ReducedFlow[tuple[K, list[V]], dict[K, list[V]]]: ...

    def group_by(
        self, key: Callable[[T], Any], value: Callable[[T], Any] | None = None
    ) -> ReducedFlow[Any, Any]:
        """Reduce into ``{key(e): [value(e), ...]}`` (``value`` defaults to the event;
        values in arrival order). Triggers emit the ``(key, values)`` pairs."""
        kf = _callback("Flow.group_by", "key", key, 1)
        vf = _callback("Flow.group_by", "value", value, 1) if value is not None else None
        if self._has_reduce():
            raise ValueError(_REDUCE_AGAIN)
        return self._add_reduced(GroupBy(kf, vf))

    def group_by_key(
        self: Flow[tuple[K, V]],
    ) -> ReducedFlow[tuple[K, list[V]], dict[K, list[V]]]:
        """For ``(key, value)`` events: ``{key: [values, ...]}``."""
        if self._has_reduce():
            raise ValueError(_REDUCE_AGAIN)
        return self._add_reduced(GroupBy())

    def on_trigger(
        self, fn: Callable[..., tuple[list[Any] | tuple[Any, ...], object]]
    ) -> ReducedFlow[Any, Any]:
        """At each trigger call ``fn(acc[, partition[, trigger]])`` which returns
        ``(events, new_acc)``; ``partition = (index, total)`` and
        ``trigger = (window_type, window_id, name)``. ``new_acc`` is kept for
        intermediate triggers and discarded when the window ends."""
        f = check_callable("fn", fn, "Flow.on_trigger")
        n = arity(f, (1, 2, 3), "fn", "Flow.on_trigger")
        self._check_emit("on_trigger")
        return self._add_reduced(OnTrigger(f, n))

    def emit(self, what: Literal["events", "state", "nothing"]) -> ReducedFlow[Any, Any]:
        """``"events"`` (the default emission), ``"state"`` (emit ``[acc]`` at each
        trigger) or ``"nothing"``."""
        check_choice("what", what, ("events", "state", "nothing"), "Flow.emit")
        self._check_emit("emit")
        if what == "events":
            return cast("ReducedFlow[Any, Any]", self)
        return self._add_reduced(Emit(what))

    def _check_emit(self, what: str) -> None:
        if not self._has_reduce():
            raise ValueError(_needs_reduce(what))
        if self._has_on_trigger():
            raise ValueError(f"{what} cannot be called after emit/on_trigger")

    def departition(
        self,
        initial: Callable[[], A],
        merge: Callable[[A, Any], A],
        done: Callable[..., Any],
        *,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[Any]:
        """Merge the partitions' results into one stage.

        For each window id, ``merge(acc, value)`` is called (with ``acc`` from
        ``initial()``) for every value a partition emits at a trigger (its
        ``on_trigger`` events, or its accumulator when it has no
        ``on_trigger``/``emit``). When every partition sent ``"done"`` for the
        window, ``done(acc)`` (or ``done(acc, window_id)``) is emitted; a ``done``
        whose signature cannot be read (a builtin such as ``dict``) gets ``acc`` only.
        """
        what = "Flow.departition"
        init = check_initial(initial, what)
        m = _callback(what, "merge", merge, 2)
        d = check_callable("done", done, what)
        # A builtin used as done (dict, set, frozenset, max) is a one-argument
        # converter; its signature usually cannot be read.
        n = arity(d, (1, 2), "done", what, unreadable=1)
        if not self._has_reduce():
            raise ValueError(_needs_reduce("departition"))
        return Flow(
            FlowSpec(
                DepartitionInput(self, init, m, d, n, DepartitionTag(), "departition"),
                (),
                _window(what, window),
                _options(what, None, max_demand, min_demand, one=True),
            )
        )

    def take_sort(
        self,
        n: int,
        key: Callable[[T], Any] | None = None,
        reverse: bool = False,
        *,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[list[T]]:
        """The first ``n`` emitted events in sorted order (``key``/``reverse`` as in
        :func:`sorted`): each partition sorts its output at each trigger, then one
        stage merges them. Emits one list per window."""
        what = "Flow.take_sort"
        n = check_positive_int("n", n, what)
        if key is not None:
            _callback(what, "key", key, 1)
        if not self._has_reduce():
            raise ValueError(_needs_reduce("take_sort"))
        return Flow(
            FlowSpec(
                DepartitionInput(
                    self,
                    list,
                    MergeSorted(n, key, reverse),
                    identity,
                    1,
                    TakeSortTag(n, key, reverse),
                    "take_sort",
                ),
                (),
                _window(what, window),
                _options(what, None, max_demand, min_demand, one=True),
            )
        )

    # -- joins ---------------------------------------------------------------------------

    @staticmethod
    def bounded_join(
        mode: str,
        left: Flow[Any],
        right: Flow[Any],
        left_key: Callable[[Any], Any],
        right_key: Callable[[Any], Any],
        join: Callable[[Any, Any], Any],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[Any]:
        """Join two bounded flows by key (all data is held until done).

        Each arriving event is matched with everything already seen on the other
        side, emitting ``join(left_event, right_event)``; at ``"done"`` the outer
        modes also emit ``join(l, None)`` / ``join(None, r)`` for unmatched keys.
        ``mode``: ``"inner"``, ``"left_outer"``, ``"right_outer"``, ``"full_outer"``.
        """
        return Flow._join(
            "Flow.bounded_join",
            mode,
            left,
            right,
            Window(),
            left_key,
            right_key,
            join,
            stages,
            max_demand,
            min_demand,
        )

    @staticmethod
    def window_join(
        mode: str,
        left: Flow[Any],
        right: Flow[Any],
        window: Window,
        left_key: Callable[[Any], Any],
        right_key: Callable[[Any], Any],
        join: Callable[[Any, Any], Any],
        *,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[Any]:
        """:meth:`bounded_join` with a window; join state is per window. A fixed
        window's ``by`` sees each side's original events."""
        return Flow._join(
            "Flow.window_join",
            mode,
            left,
            right,
            window,
            left_key,
            right_key,
            join,
            stages,
            max_demand,
            min_demand,
        )

    @staticmethod
    def _join(
        what: str,
        mode: str,
        left: object,
        right: object,
        window: object,
        left_key: object,
        right_key: object,
        join: object,
        stages: object,
        max_demand: object,
        min_demand: object,
    ) -> Flow[Any]:
        check_choice("mode", mode, JOIN_MODES, what)
        for name, side in (("left", left), ("right", right)):
            if not isinstance(side, Flow):
                raise TypeError(invalid(name, "a Flow", side, what))
        lk = _callback(what, "left_key", left_key, 1)
        rk = _callback(what, "right_key", right_key, 1)
        j = _callback(what, "join", join, 2)
        for name, f in (("left_key", lk), ("right_key", rk)):
            if is_async_callable(f):
                raise TypeError(
                    invalid(name, "a plain function (it runs in the dispatcher)", f, what)
                )
        assert isinstance(left, Flow)
        assert isinstance(right, Flow)
        return Flow(
            FlowSpec(
                JoinInput(cast("JoinMode", mode), left, right, lk, rk, j),
                (),
                _window(what, window),
                _options(what, stages, max_demand, min_demand),
            )
        )

    def write_to(self, sink: Sink) -> Flow[T]:
        """Write the flow's output to ``sink`` (a :class:`~flowstage.messages.Sink`,
        such as a stream of a broker), batch by batch, in the calling process, before
        it is consumed: ``await flow.write_to(sink).run()``. In a flow over
        acknowledged messages, a message is acknowledged only after what came of it
        was written. Must be the last step of the flow; the sink is closed when the
        flow ends."""
        what = "Flow.write_to"
        _not_a_flow(what, sink)
        if not isinstance(sink, Sink):
            raise TypeError(
                invalid("sink", "a sink (async write(events) and aclose())", sink, what)
            )
        return Flow(replace(self.spec, writer=sink))

    # -- compilation and running ----------------------------------------------------------

    def compile(
        self, *, sink: OutputKind = "stream", consumers: Sequence[object] = ()
    ) -> CompiledFlow:
        """The plan of this flow and the bindings of the live objects it uses.

        ``sink`` says how the output is consumed: ``"stream"`` (iterated),
        ``"run"`` (discarded) or ``"into_stages"`` (``consumers``).
        """
        return compile_flow(self, sink=sink, consumers=tuple(consumers))

    def plan(self, *, sink: OutputKind = "stream") -> Plan:
        """The :class:`~flowstage.plan.Plan` of this flow: plain, versioned data
        that any executor can run (see :mod:`flowstage.plan`)."""
        return self.compile(sink=sink).plan

    def stream(
        self, *, executor: Executor | str | None = None
    ) -> AbstractAsyncContextManager[FlowIterator[T]]:
        """Run the flow; ``async with flow.stream() as events: async for e in events``
        (``events.batches()`` yields lists).

        Leaving the block stops the flow."""
        compiled = self.compile()
        return cast(
            "AbstractAsyncContextManager[FlowIterator[T]]",
            resolve(executor).open_stream(compiled.plan, compiled.bindings),
        )

    def iterate(self, *, executor: Executor | str | None = None) -> AsyncForIterator[T]:
        """An async iterator over the flow's output that runs the flow only while
        it is iterated: ``async for e in flow.iterate(executor=...)``.

        ``async for e in flow`` is ``flow.iterate()`` on the local executor; see
        :meth:`__aiter__` for what that means (and when ``stream()`` is the better
        choice).
        """
        return self._iterate(executor, stacklevel=3)

    def _iterate(self, executor: Executor | str | None, stacklevel: int) -> AsyncForIterator[T]:
        compiled = self.compile()
        timers = sorted({t for layer in compiled.plan.layers for t in layer.window.timers})
        if timers:
            warnings.warn(
                f"this flow uses processing-time timers ({', '.join(timers)}); under "
                "'async for' it runs only while the loop asks for events, so they fire "
                "late, or never while the loop body runs: use "
                "'async with flow.stream() as events: async for e in events' instead",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        return cast(
            "AsyncForIterator[T]", resolve(executor).iterate(compiled.plan, compiled.bindings)
        )

    def __aiter__(self) -> AsyncForIterator[T]:
        """Iterate over the flow's output: ``async for e in flow``.

        The flow runs only while the loop asks for events, in slices inside each
        ``__anext__``; no task exists between two events handed out, so leaving
        the loop at any point (``break``, ``return``, an exception) leaves nothing
        running. Two consequences:

        * ``break`` does not close a source that did not end (``async for`` never
          tells the iterator it was left); wrap the loop in
          ``contextlib.aclosing(flow.iterate())`` to close it at once, or use
          ``stream()``. A source left unclosed is closed by the garbage collector
          later (trio warns about it).
        * Nothing runs while the loop body runs: a slow body holds the whole flow,
          and processing-time windows and triggers (``Window.periodic``,
          ``trigger_periodically``, ``allowed_lateness``) see time pass without
          events, so iterating such a flow this way warns (``RuntimeWarning``).

        Use ``async with flow.stream() as events: async for e in events`` when the
        flow should keep running while the loop body awaits other things; leaving
        that block closes everything. A cancelled or failed loop closes its sources
        either way.

        An async source pulled when a slice ends finishes the item it is waiting
        for before the event is handed out: the first event of a source that
        yields every second arrives after about a second, and a source that waits
        for the loop body itself never arrives (use ``stream()`` for those).
        """
        return self._iterate(None, stacklevel=3)

    async def to_list(
        self,
        *,
        executor: Executor | str | None = None,
        on_statistics: Callable[[FlowStatistics], object] | None = None,
    ) -> list[T]:
        """Run the flow and collect its output (in no particular order across
        stages).

        ``on_statistics``, if given, is called once with the flow's last
        :class:`~flowstage.FlowStatistics` snapshot when it has ended (whether it
        finished or failed). If the flow failed and ``on_statistics`` raises too, the
        flow's exception is raised, with a note naming the callback's."""
        out: list[T] = []
        events: FlowIterator[T] | None = None
        try:
            async with self.stream(executor=executor) as events:
                async for batch in events.batches():
                    out.extend(batch)
        except BaseException as exc:
            if on_statistics is not None and events is not None:
                _statistics_after_failure(on_statistics, events, exc)
            raise
        if on_statistics is not None and events is not None:
            on_statistics(events.statistics())
        return out

    async def run(
        self,
        *,
        executor: Executor | str | None = None,
        on_statistics: Callable[[FlowStatistics], object] | None = None,
    ) -> None:
        """Run the flow for its side effects; the final layer emits nothing.

        ``on_statistics`` is as for :meth:`to_list`."""
        compiled = self.compile(sink="run")
        events: FlowIterator[object] | None = None
        try:
            async with resolve(executor).open_stream(compiled.plan, compiled.bindings) as events:
                async for _ in events.batches():
                    pass
        except BaseException as exc:
            if on_statistics is not None and events is not None:
                _statistics_after_failure(on_statistics, events, exc)
            raise
        if on_statistics is not None and events is not None:
            on_statistics(events.statistics())

    def start(
        self, *, executor: Executor | str | None = None, publish: bool = False
    ) -> AbstractAsyncContextManager[RunningFlow]:
        """Start the flow in the background: ``async with flow.start() as running``
        (``running.trigger(name)``, ``running.stop()``, ``await running.wait()``).

        The output is discarded (the final layer emits nothing), unless
        ``publish=True``: then it goes to a fan-out that any number of subscribers
        read with ``running.subscribe()``, each through its own bounded buffer (see
        :class:`flowstage.FlowSubscription`)."""
        if not isinstance(publish, bool):
            raise TypeError(invalid("publish", "True or False", publish, "Flow.start"))
        compiled = self.compile(sink="publish" if publish else "run")
        return resolve(executor).start(compiled.plan, compiled.bindings)

    def into_stages(
        self, consumers: Sequence[object], *, executor: Executor | str | None = None
    ) -> AbstractAsyncContextManager[RunningFlow]:
        """Start the flow with its output subscribed to running ``consumers``
        (transient subscriptions; the consumers are not owned by the flow)."""
        items = _stages(
            "Flow.into_stages", "consumers", consumers, ("consumer", "producer_consumer")
        )
        compiled = self.compile(sink="into_stages", consumers=items)
        return resolve(executor).start(compiled.plan, compiled.bindings)


class ReducedFlow(Flow[T], Generic[T, A]):
    """A flow whose layer reduces (``reduce``, ``group_by``, ``emit_and_reduce``,
    ``group_by_key``): ``T`` is what its triggers emit, ``A`` the accumulator's
    type, so that ``on_trigger``, ``emit``, ``departition`` and ``take_sort`` (which
    only a reducing layer takes) are typed precisely. It is a :class:`Flow` in
    every other way.
    """

    __slots__ = ()

    @overload
    def on_trigger(
        self, fn: Callable[[A], tuple[list[U] | tuple[U, ...], object]]
    ) -> ReducedFlow[U, A]: ...

    @overload
    def on_trigger(
        self, fn: Callable[[A, tuple[int, int]], tuple[list[U] | tuple[U, ...], object]]
    ) -> ReducedFlow[U, A]: ...

    @overload
    def on_trigger(
        self,
        fn: Callable[
            [A, tuple[int, int], tuple[str, Any, Any]], tuple[list[U] | tuple[U, ...], object]
        ],
    ) -> ReducedFlow[U, A]: ...

    def on_trigger(
        self, fn: Callable[..., tuple[list[Any] | tuple[Any, ...], object]]
    ) -> ReducedFlow[Any, Any]:
        """At each trigger call ``fn(acc[, partition[, trigger]])`` with the
        accumulator (of type ``A``); see :meth:`Flow.on_trigger`."""
        return super().on_trigger(fn)

    @overload
    def emit(self, what: Literal["events"]) -> ReducedFlow[T, A]: ...

    @overload
    def emit(self, what: Literal["state"]) -> ReducedFlow[A, A]: ...

    @overload
    def emit(self, what: Literal["nothing"]) -> ReducedFlow[Never, A]: ...

    def emit(self, what: Literal["events", "state", "nothing"]) -> ReducedFlow[Any, Any]:
        """``"events"``, ``"state"`` (the accumulator, of type ``A``) or
        ``"nothing"``; see :meth:`Flow.emit`."""
        return super().emit(what)


class FromPush(Generic[T]):
    """``Flow.from_push``: a flow fed by pushing events into it, and the handle to
    push with::

        flow, push = Flow.from_push[str](capacity=1000, overflow="block")
        async with flow.map(len).start() as running:
            await push("event")

    ``Flow.from_push[str]`` types the events (``Flow[str]``, ``PushHandle[str]``);
    ``Flow.from_push()`` leaves them ``Any``. See :meth:`__call__`.
    """

    __slots__ = ()

    def __getitem__(self, item_type: type[U]) -> FromPush[U]:
        """The same, for events of type ``item_type``."""
        return cast("FromPush[U]", self)

    def __repr__(self) -> str:
        return "<Flow.from_push>"

    def __call__(
        self,
        capacity: int = 1000,
        overflow: Overflow = "block",
        *,
        name: str | None = None,
        stages: int | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
        window: Window | None = None,
    ) -> tuple[Flow[T], PushHandle[T]]:
        """A flow over one push source (one producer), then a layer of
        ``stages``, and the :class:`flowstage.PushHandle` that feeds it.

        The source holds at most ``capacity`` events; ``overflow`` says what
        happens to an event that does not fit: ``"block"`` (the pusher waits),
        ``"drop_oldest"``, ``"drop_newest"`` or ``"reject"`` (raises
        :class:`flowstage.PushRejected`). ``name`` names the source stage. The
        handle feeds one run of the flow; ``push.close()`` ends the input.
        """
        what = "Flow.from_push"
        capacity = check_positive_int("capacity", capacity, what)
        overflow = check_choice("overflow", overflow, OVERFLOWS, what)
        if name is not None and not isinstance(name, str):
            raise TypeError(invalid("name", "a string or None", name, what))
        handle: PushHandle[T] = PushHandle(capacity, overflow, name=name)
        flow: Flow[T] = Flow._source(what, "push", [handle], stages, max_demand, min_demand, window)
        return flow, handle


Flow.from_push = FromPush()


def _statistics_after_failure(
    on_statistics: Callable[[FlowStatistics], object],
    events: FlowIterator[Any],
    failure: BaseException,
) -> None:
    """Give ``on_statistics`` the last snapshot of a flow that failed with
    ``failure``; an error of the callback becomes a note on ``failure``, which the
    caller raises."""
    try:
        on_statistics(events.statistics())
    except Exception as exc:
        failure.add_note(f"on_statistics raised too: {type(exc).__name__}: {exc}")


def _nonempty_list(what: str, option: str, items: object) -> list[Any]:
    if isinstance(items, Flow):
        _not_a_flow(what, items)
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(invalid(option, "a non-empty list", items, what))
    return list(items)


def _stages(what: str, option: str, items: object, kinds: tuple[str, ...]) -> list[Any]:
    """A non-empty list of stages of one of ``kinds``."""
    stages = _nonempty_list(what, option, items)
    for stage in stages:
        if not isinstance(stage, Stage) or stage.kind not in kinds:
            raise TypeError(invalid(option, f"a list of {' or '.join(kinds)} stages", stage, what))
    return stages


def _flows(what: str, flows: object) -> tuple[Flow[Any], ...]:
    if isinstance(flows, Flow):
        return (flows,)
    if isinstance(flows, list | tuple) and flows and all(isinstance(f, Flow) for f in flows):
        return tuple(flows)
    raise ValueError(invalid("flows", "a flow or a non-empty list of flows", flows, what))
