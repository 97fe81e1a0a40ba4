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

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from ._plan import (
    JOIN_MODES,
    AsyncIterableSource,
    DepartitionInput,
    DepartitionTag,
    Emit,
    FlowsInput,
    IterableSource,
    JoinInput,
    KeySpec,
    LayerOps,
    MapBatch,
    Mapper,
    OnTrigger,
    Operation,
    ProducerSpec,
    Reduce,
    StagesSource,
    TakeSortTag,
    ThroughInput,
    Uniq,
    compile_flow,
)
from ._validate import (
    arity,
    check_callable,
    check_initial,
    demand_options,
    is_async_callable,
    positive_int,
    stages_option,
)
from ._window import Window

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ._plan import JoinMode

__all__ = ["Flow"]

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


@dataclass(frozen=True, slots=True)
class LayerOptions:
    """Validated options of the layer a flow's operations run in."""

    stages: int
    max_demand: int
    min_demand: int


def _options(
    what: str, stages: object, max_demand: object, min_demand: object, *, one: bool = False
) -> LayerOptions:
    n = 1 if one else stages_option(stages, what)
    mx, mn = demand_options(max_demand, min_demand, what)
    return LayerOptions(n, mx, mn)


def _window(what: str, window: object) -> Window:
    if window is None:
        return Window()
    if not isinstance(window, Window):
        raise TypeError(f"{what}: window expected a Window (see flowstage.Window), got: {window!r}")
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
        "partition: key expected a callable, ('elem', index) with index >= 0 "
        f"or ('key', key), got: {key!r}"
    )


@dataclass(frozen=True, slots=True, eq=False)
class Flow(Generic[T]):
    """An immutable description of a parallel flow of events of type ``T``.

    Build one with ``Flow.from_iterable`` and friends; do not call the
    constructor. See the module docstring for the layer model.
    """

    _producers: ProducerSpec
    _ops: tuple[Operation, ...] = ()
    _window: Window = field(default_factory=Window)
    _options: LayerOptions = field(default_factory=lambda: LayerOptions(1, 1000, 500))

    def __repr__(self) -> str:
        ops = ", ".join(type(o).__name__ for o in self._ops)
        return f"<Flow {type(self._producers).__name__} stages={self._options.stages} [{ops}]>"

    # -- sources -------------------------------------------------------------------

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
        _not_a_flow("Flow.from_iterable", iterable)
        return Flow.from_iterables(
            [iterable], stages=stages, max_demand=max_demand, min_demand=min_demand, window=window
        )

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
        items = _nonempty_list("Flow.from_iterables", iterables)
        for it in items:
            _not_a_flow("Flow.from_iterables", it)
            if not hasattr(it, "__iter__"):
                raise TypeError(f"Flow.from_iterables expected iterables, got: {it!r}")
        return Flow(
            IterableSource(tuple(items)),
            (),
            _window("Flow.from_iterables", window),
            _options("Flow.from_iterables", stages, max_demand, min_demand),
        )

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
        _not_a_flow("Flow.from_async_iterable", iterable)
        return Flow.from_async_iterables(
            [iterable], stages=stages, max_demand=max_demand, min_demand=min_demand, window=window
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
        items = _nonempty_list("Flow.from_async_iterables", iterables)
        for it in items:
            _not_a_flow("Flow.from_async_iterables", it)
            if not hasattr(it, "__aiter__"):
                raise TypeError(
                    f"Flow.from_async_iterables expected async iterables, got: {it!r} "
                    "(use Flow.from_iterables for plain iterables)"
                )
        return Flow(
            AsyncIterableSource(tuple(items)),
            (),
            _window("Flow.from_async_iterables", window),
            _options("Flow.from_async_iterables", stages, max_demand, min_demand),
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
        items = _nonempty_list("Flow.from_stages", producers)
        return Flow(
            StagesSource(tuple(items)),
            (),
            _window("Flow.from_stages", window),
            _options("Flow.from_stages", stages, max_demand, min_demand),
        )

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
        fl = _flows("Flow.merge", flows)
        return Flow(
            FlowsInput(fl, "demand"),
            (),
            _window("Flow.merge", window),
            _options("Flow.merge", stages, max_demand, min_demand),
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
        if hash is not None and not callable(hash):
            raise TypeError(
                "partition: hash expected a function that receives an event and returns "
                f"a tuple with the event and its partition, got: {hash!r}"
            )
        return Flow(
            FlowsInput((self,), "partition", _key_spec(key), hash),
            (),
            _window("partition", window),
            _options("partition", stages, max_demand, min_demand),
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
        return Flow(
            FlowsInput((self,), "demand"),
            (),
            _window("shuffle", window),
            _options("shuffle", stages, max_demand, min_demand),
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
        items = _nonempty_list("through_stages", producer_consumers)
        return Flow(
            ThroughInput(self, tuple(items)),
            (),
            _window("through_stages", window),
            _options("through_stages", stages, max_demand, min_demand),
        )

    # -- per-event operations ----------------------------------------------------------

    def _has_reduce(self) -> bool:
        return any(isinstance(o, Reduce) for o in self._ops)

    def _has_on_trigger(self) -> bool:
        return any(isinstance(o, OnTrigger | Emit) for o in self._ops)

    def _add(self, op: Operation) -> Flow[Any]:
        return replace(self, _ops=(*self._ops, op))

    def _mapper(self, kind: Any, fn: object) -> Flow[Any]:
        f = check_callable(kind, fn)
        if self._has_reduce():
            raise ValueError(
                f"{kind} cannot be called after group_by/reduce/emit_and_reduce operation "
                "(use on_trigger to further emit events or the accumulated state, "
                "or partition() again to start a new layer)"
            )
        return self._add(Mapper(kind, f))

    def map(self, fn: Callable[[T], U]) -> Flow[U]:
        """Apply ``fn`` to every event."""
        return self._mapper("map", fn)

    def flat_map(self, fn: Callable[[T], Iterable[U]]) -> Flow[U]:
        """Apply ``fn`` (returning an iterable) and flatten one level."""
        return self._mapper("flat_map", fn)

    def filter(self, fn: Callable[[T], object]) -> Flow[T]:
        """Keep events for which ``fn`` is truthy."""
        return self._mapper("filter", fn)

    def reject(self, fn: Callable[[T], object]) -> Flow[T]:
        """Drop events for which ``fn`` is truthy."""
        return self._mapper("reject", fn)

    def map_values(self, fn: Callable[[Any], Any]) -> Flow[Any]:
        """For ``(key, value)`` events: ``(key, fn(value))``."""
        return self._mapper("map_values", fn)

    def map_batch(self, fn: Callable[[list[T]], list[U]]) -> Flow[U]:
        """Apply ``fn`` to each raw batch a stage receives (it returns a list).
        Must come first in the layer, before windows see the events."""
        f = check_callable("map_batch", fn)
        if any(not isinstance(o, MapBatch) for o in self._ops):
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
        return self._uniq(check_callable("uniq_by", key))

    def _uniq(self, key: Callable[[Any], Any] | None) -> Flow[Any]:
        if self._has_reduce():
            raise ValueError(
                "uniq/uniq_by cannot be called after group_by/reduce/emit_and_reduce "
                "(partition() again to start a new layer)"
            )
        return self._add(Uniq(key))

    # -- reducing and emitting ---------------------------------------------------------

    def _reducer(self, what: str, initial: object, fn: object, emits: bool) -> Flow[Any]:
        f = check_callable(what, fn)
        init = check_initial(what, initial)
        if self._has_reduce():
            raise ValueError(_REDUCE_AGAIN)
        return self._add(Reduce(init, f, emits))

    def reduce(self, initial: Callable[[], A], fn: Callable[[A, T], A]) -> Flow[Any]:
        """Reduce each window of each stage: ``acc = fn(acc, event)`` starting
        from ``initial()``. Without ``on_trigger``/``emit``, triggers emit the
        accumulator's items (a dict gives ``(key, value)`` pairs)."""
        return self._reducer("reduce", initial, fn, False)

    def emit_and_reduce(
        self, initial: Callable[[], A], fn: Callable[[A, T], tuple[Iterable[Any], A]]
    ) -> Flow[Any]:
        """Like :meth:`reduce`, but ``fn(acc, event)`` returns
        ``(events_to_emit_now, acc)``; the events are emitted in order."""
        return self._reducer("emit_and_reduce", initial, fn, True)

    def group_by(
        self, key: Callable[[T], K], value: Callable[[T], V] | None = None
    ) -> Flow[tuple[K, list[V]]]:
        """Reduce into ``{key(e): [value(e), ...]}`` (values in arrival order)."""
        kf = check_callable("group_by key", key)
        vf = check_callable("group_by value", value) if value is not None else None
        if is_async_callable(kf) or (vf is not None and is_async_callable(vf)):

            async def agroup(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
                k = kf(e)
                if isinstance(k, Awaitable):
                    k = await k
                v = e if vf is None else vf(e)
                if isinstance(v, Awaitable):
                    v = await v
                acc.setdefault(k, []).append(v)
                return acc

            return self._reducer("group_by", dict, agroup, False)

        if vf is None:

            def group(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
                acc.setdefault(kf(e), []).append(e)
                return acc

        else:
            vfn = vf

            def group(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
                acc.setdefault(kf(e), []).append(vfn(e))
                return acc

        return self._reducer("group_by", dict, group, False)

    def group_by_key(self) -> Flow[Any]:
        """For ``(key, value)`` events: ``{key: [values, ...]}``."""

        def group(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
            k, v = e
            acc.setdefault(k, []).append(v)
            return acc

        return self._reducer("group_by_key", dict, group, False)

    def on_trigger(self, fn: Callable[..., tuple[Iterable[Any], Any]]) -> Flow[Any]:
        """At each trigger call ``fn(acc[, partition[, trigger]])`` which returns
        ``(events, new_acc)``; ``partition = (index, total)`` and
        ``trigger = (window_type, window_id, name)``. ``new_acc`` is kept for
        intermediate triggers and discarded when the window ends."""
        f = check_callable("on_trigger", fn)
        n = arity(f, (1, 2, 3), "on_trigger")
        self._check_emit("on_trigger")
        return self._add(OnTrigger(f, n))

    def emit(self, what: Literal["events", "state", "nothing"]) -> Flow[Any]:
        """``"events"`` (the default emission), ``"state"`` (emit ``[acc]`` at each
        trigger) or ``"nothing"``."""
        if what not in ("events", "state", "nothing"):
            raise ValueError(f"emit expected 'events', 'state' or 'nothing', got: {what!r}")
        self._check_emit("emit")
        if what == "events":
            return self
        return self._add(Emit(what))

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
        init = check_initial("departition", initial)
        m = check_callable("departition merge", merge)
        d = check_callable("departition done", done)
        # A builtin used as done (dict, set, frozenset, max) is a one-argument
        # converter; its signature usually cannot be read.
        n = arity(d, (1, 2), "departition done", unreadable=1)
        if not self._has_reduce():
            raise ValueError(_needs_reduce("departition"))
        return Flow(
            DepartitionInput(self, init, m, d, n, DepartitionTag()),
            (),
            _window("departition", window),
            _options("departition", None, max_demand, min_demand, one=True),
        )

    def take_sort(
        self,
        n: int,
        key: Callable[[Any], Any] | None = None,
        reverse: bool = False,
        *,
        window: Window | None = None,
        max_demand: int | None = None,
        min_demand: int | None = None,
    ) -> Flow[list[Any]]:
        """The first ``n`` emitted events in sorted order (``key``/``reverse`` as in
        :func:`sorted`): each partition sorts its output at each trigger, then one
        stage merges them. Emits one list per window."""
        n = positive_int("take_sort n", n)
        if key is not None:
            check_callable("take_sort key", key)
        if not self._has_reduce():
            raise ValueError(_needs_reduce("take_sort"))
        return Flow(
            DepartitionInput(
                self,
                list,
                _merge_sorted(n, key, reverse),
                _identity,
                1,
                TakeSortTag(n, key, reverse),
            ),
            (),
            _window("take_sort", window),
            _options("take_sort", None, max_demand, min_demand, one=True),
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
        return Flow.window_join(
            mode,
            left,
            right,
            Window(),
            left_key,
            right_key,
            join,
            stages=stages,
            max_demand=max_demand,
            min_demand=min_demand,
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
        if mode not in JOIN_MODES:
            raise ValueError(
                "join mode expected 'inner', 'left_outer', 'right_outer' or "
                f"'full_outer', got: {mode!r}"
            )
        for side in (left, right):
            if not isinstance(side, Flow):
                raise TypeError(f"join expected flows as left and right, got: {side!r}")
        lk = check_callable("join left_key", left_key)
        rk = check_callable("join right_key", right_key)
        j = check_callable("join", join)
        for f in (lk, rk):
            if is_async_callable(f):
                raise TypeError("join keys must be plain functions (they run in the dispatcher)")
        return Flow(
            JoinInput(cast("JoinMode", mode), left, right, lk, rk, j),
            (),
            _window("window_join", window),
            _options("join", stages, max_demand, min_demand),
        )

    # -- compilation and running ----------------------------------------------------------

    def _layer_ops(self) -> LayerOps:
        batch = tuple(o for o in self._ops if isinstance(o, MapBatch))
        mappers = tuple(o for o in self._ops if isinstance(o, Mapper | Uniq))
        reducer = next((o for o in self._ops if isinstance(o, Reduce)), None)
        trig = next((o for o in self._ops if isinstance(o, OnTrigger | Emit)), None)
        return LayerOps(batch, mappers, reducer, trig)

    def stream(self) -> AbstractAsyncContextManager[AsyncIterator[T]]:
        """Run the flow; ``async with flow.stream() as events: async for e in events``.

        Leaving the block stops the flow."""
        from . import _executor  # type: ignore[attr-defined, unused-ignore]

        return cast(
            "AbstractAsyncContextManager[AsyncIterator[T]]",
            _executor.open_stream(compile_flow(self)),
        )

    def __aiter__(self) -> AsyncIterator[T]:
        """Iterate over the flow's output: ``async for e in flow``.

        The flow runs only while the loop asks for events, in slices inside each
        ``__anext__``; no task exists between two events handed out, so leaving
        the loop at any point (``break``, ``return``, an exception) leaves nothing
        running. Use ``async with flow.stream()`` when the flow should keep
        running while the loop body awaits other things.

        An async source pulled when a slice ends finishes the item it is waiting
        for before the event is handed out: the first event of a source that
        yields every second arrives after about a second, and a source that waits
        for the loop body itself never arrives (use ``stream()`` for those).
        """
        from ._exec_sliced import iterate

        return cast("AsyncIterator[T]", iterate(compile_flow(self)))

    async def to_list(self) -> list[T]:
        """Run the flow and collect its output (in no particular order across
        stages)."""
        out: list[T] = []
        async with self.stream() as events:
            async for batch in events.batches():  # type: ignore[attr-defined]
                out.extend(batch)
        return out

    async def run(self) -> None:
        """Run the flow for its side effects; the final layer emits nothing."""
        from . import _executor  # type: ignore[attr-defined, unused-ignore]

        async with _executor.open_stream(compile_flow(self, sink="run")) as events:
            async for _ in events.batches():  # type: ignore[attr-defined]
                pass

    def start(self) -> AbstractAsyncContextManager[Any]:
        """Start the flow in the background (final layer emits nothing):
        ``async with flow.start() as running`` (``running.trigger(name)``,
        ``running.stop()``, ``await running.wait()``)."""
        from . import _executor  # type: ignore[attr-defined, unused-ignore]

        return cast(
            "AbstractAsyncContextManager[Any]",
            _executor.start_flow(compile_flow(self, sink="run")),
        )

    def into_stages(self, consumers: Sequence[object]) -> AbstractAsyncContextManager[Any]:
        """Start the flow with its output subscribed to running ``consumers``
        (transient subscriptions; the consumers are not owned by the flow)."""
        items = _nonempty_list("into_stages", consumers)
        from . import _executor  # type: ignore[attr-defined, unused-ignore]

        plan = compile_flow(self, sink="into_stages", consumers=tuple(items))
        return cast("AbstractAsyncContextManager[Any]", _executor.start_flow(plan))


def _nonempty_list(what: str, items: object) -> list[Any]:
    if isinstance(items, Flow):
        _not_a_flow(what, items)
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{what} expects a non-empty list as argument, got: {items!r}")
    return list(items)


def _flows(what: str, flows: object) -> tuple[Flow[Any], ...]:
    if isinstance(flows, Flow):
        return (flows,)
    if isinstance(flows, list | tuple) and flows and all(isinstance(f, Flow) for f in flows):
        return tuple(flows)
    raise ValueError(
        f"{what} expected a flow or a non-empty list of flows as first argument, got: {flows!r}"
    )


def _identity(x: Any) -> Any:
    return x


def _merge_sorted(
    n: int, key: Callable[[Any], Any] | None, reverse: bool
) -> Callable[[list[Any], list[Any]], list[Any]]:
    import heapq
    import itertools

    def merge(acc: list[Any], other: list[Any]) -> list[Any]:
        return list(itertools.islice(heapq.merge(acc, other, key=key, reverse=reverse), n))

    return merge
