"""The actors of one run, as the parent sees them (a :class:`~flowstage.executors.
_hosting.HostPool`).

Start-up: connect to Ray (see :mod:`._cluster`), create one :class:`~._actor.HostActor`
per host (``max_restarts=0``: an actor that came back would have lost its partitions'
state, and the run would go on with wrong results), set every actor up, then start
them all. Running: one sender per actor for what the parent sends (batched, windowed:
see :mod:`._batches`) and one long poll per actor for what it sends back. Ending:
every actor is killed, and the pool waits until Ray reports each one gone.

Errors: a user callback's failure arrives as an ``("error", ...)`` message and is
raised as the original exception; an actor that dies (killed, its node lost) raises
:class:`~flowstage.executors._hosting.WorkerCrashed` naming the partitions it hosted.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread

from .._hosting import Quiescence, WorkerCrashed, remote_error, virtual_clock
from ._actor import HostActor
from ._batches import BatchSender
from ._cluster import acquire, import_ray, release
from ._wait import until_fails, wait_ref

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["RayPool", "pending_calls_needed"]

#: How long the pool waits for Ray to confirm the actors it killed are gone.
KILL_DEADLINE: Final = 10.0

_actor_class: Any = None


def _remote_class() -> Any:
    global _actor_class
    if _actor_class is None:
        ray = import_ray()
        _actor_class = ray.remote(HostActor)
    return _actor_class


def pending_calls_needed(actors: int, window: int) -> int:
    """The most calls one actor of a run can have queued: a window from the parent
    and from each peer, the parent's poll, and the set-up calls."""
    return window * actors + 4


class RayPool:
    """The actors of one run (see the module docstring)."""

    def __init__(
        self,
        size: int,
        *,
        address: str | None,
        init_options: dict[str, Any],
        actor_options: dict[str, Any],
        window: int,
        max_pending_calls: int | None,
        start_timeout: float,
    ) -> None:
        self.size = size
        self.partitions: list[list[str]] = [[] for _ in range(size)]
        self.stopping = False
        self.address = address
        self.init_options = init_options
        self.actor_options = actor_options
        self.window = window
        needed = pending_calls_needed(size, window)
        if max_pending_calls is not None and max_pending_calls < needed:
            raise ValueError(
                f"RayExecutor: max_pending_calls must be at least window * actors + 4 "
                f"= {needed} for this flow ({size} actors), got: {max_pending_calls!r}"
            )
        self.max_pending_calls = max_pending_calls or needed
        self.start_timeout = start_timeout
        self.quiescence = Quiescence(size, virtual_clock())
        self.track = self.quiescence.track
        self.actors: list[Any] = []
        self.pids: list[int] = []
        self.senders: list[BatchSender] = []
        self._polls: list[Any] = []
        self._leased = False
        self._closed = False

    # -- start-up -------------------------------------------------------------------------

    async def _hold(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn``; under a virtual clock, keep the clock from jumping meanwhile
        (nothing of this run is idle while Ray starts or stops actors)."""
        if not self.track:
            await fn()
            return
        done = anyio.Event()

        async def run() -> None:
            try:
                await fn()
            finally:
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while not done.is_set():
                await anyio.lowlevel.checkpoint()

    async def start(self, setups: list[dict[str, Any]]) -> None:
        """Start one actor per set-up (actor ``i`` gets ``setups[i]``)."""
        for setup in setups:
            setup["track"] = self.track
        await self._hold(lambda: self._start(setups))

    async def _start(self, setups: list[dict[str, Any]]) -> None:
        self._leased = await anyio.to_thread.run_sync(acquire, self.address, self.init_options)
        options = {
            "scheduling_strategy": "SPREAD",
            **self.actor_options,
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_pending_calls": self.max_pending_calls,
        }
        cls = _remote_class().options(**options)
        self.actors = actors = [cls.remote() for _ in setups]
        self._polls = [None] * len(actors)
        refs = [
            actor.setup.remote(
                setup, {j: peer for j, peer in enumerate(actors) if j != i}, self.window
            )
            for i, (actor, setup) in enumerate(zip(actors, setups, strict=True))
        ]
        ray = import_ray()
        with anyio.move_on_after(self.start_timeout) as scope:
            try:
                self.pids = [await wait_ref(ref) for ref in refs]
            except ray.exceptions.RayTaskError as exc:
                exc.add_note(
                    "while setting up the flow's actors: flowstage, and the modules the "
                    "flow's callbacks are defined in, must be importable on every node"
                )
                raise
        if scope.cancelled_caught:
            raise TimeoutError(
                f"RayExecutor: Ray did not start the run's {len(actors)} actors within "
                f"{self.start_timeout} s (start_timeout); does the cluster have the "
                f"resources that actor_options={self.actor_options!r} asks for?"
            )
        for actor in actors:
            actor.run.remote()
        self.senders = [BatchSender(_deliver(actor), self.window, wait_ref) for actor in actors]

    # -- running ------------------------------------------------------------------------------

    def send(self, host: int, message: Any) -> None:
        self.senders[host].send(message)
        if self.track:
            self.quiescence.sent(host)

    async def serve(self, handle: Callable[[int, Any], None]) -> None:
        """Send and poll every actor until cancelled; raise an actor's failure."""
        async with anyio.create_task_group() as tg:
            for index in range(self.size):
                tg.start_soon(self._poll, index, handle)
                tg.start_soon(self._write, index)
            if self.track:
                tg.start_soon(self.quiescence.hold_clock)

    def _crashed(self, index: int, error: BaseException) -> WorkerCrashed:
        self.stopping = True
        detail = type(error).__name__
        pid = self.pids[index] if index < len(self.pids) else None
        if pid is not None:
            detail += f", process {pid}"
        return WorkerCrashed(index, tuple(self.partitions[index]), None, "Ray actor", detail)

    async def _write(self, index: int) -> None:
        ray = import_ray()
        try:
            await self.senders[index].run()
        except ray.exceptions.RayError as exc:
            if not self.stopping:
                raise self._crashed(index, exc) from None

    async def _poll(self, index: int, handle: Callable[[int, Any], None]) -> None:
        ray = import_ray()
        actor = self.actors[index]
        polls = self._polls
        while True:
            ref = polls[index]
            if ref is None:
                ref = polls[index] = actor.poll.remote()
            try:
                batch = await wait_ref(ref)
            except ray.exceptions.RayError as exc:
                polls[index] = None
                if self.stopping:
                    return
                raise self._crashed(index, exc) from None
            polls[index] = None
            if batch is None:  # the host stopped (after an error, reported first)
                if self.stopping:
                    return
                raise self._crashed(index, RuntimeError("the host stopped"))
            for message in batch:
                kind = message[0]
                if kind == "error":
                    self.stopping = True
                    raise remote_error(message, f"flowstage Ray actor {index}")
                if kind == "idle":
                    self.quiescence.idle(index, message[1], message[2])
                else:
                    handle(index, message)

    # -- shut-down ----------------------------------------------------------------------------

    def _kill(self) -> None:
        ray = import_ray()
        for actor in self.actors:
            with contextlib.suppress(Exception):  # already gone, or Ray is shutting down
                ray.kill(actor, no_restart=True)

    def release(self) -> None:
        """Every actor is done: nothing to do before :meth:`aclose`, which kills
        them (an actor holds nothing between calls)."""

    def abort(self) -> None:
        """Kill every actor now, without waiting (the flow was dropped)."""
        self.stopping = True
        if not self._closed:
            self._kill()

    async def aclose(self) -> None:
        """Kill every actor and wait until Ray reports each gone; safe to call more
        than once."""
        if self._closed:
            return
        self._closed = True
        self.stopping = True
        await self._hold(self._close)

    async def _close(self) -> None:
        ray = import_ray()
        try:
            if self.actors:
                self._kill()
                # A call to a killed actor fails once Ray knows it is dead (one
                # that reached it before the kill succeeds: call again). The
                # deadline is real time (a virtual clock stands still meanwhile);
                # the scope also bounds a call that never answers, on a real clock.
                end = time.monotonic() + KILL_DEADLINE
                with anyio.move_on_after(KILL_DEADLINE):
                    for actor in self.actors:
                        left = max(0.0, end - time.monotonic())
                        await until_fails(_pinger(actor), ray.exceptions.RayError, left)
            self.actors = []
        finally:
            if self._leased:
                self._leased = False
                await anyio.to_thread.run_sync(release)


def _pinger(actor: Any) -> Callable[[], Awaitable[Any]]:
    """A call to ``actor`` that answers its process id (see :func:`.until_fails`)."""

    def ping() -> Awaitable[Any]:
        return wait_ref(actor.ping.remote())

    return ping


def _deliver(actor: Any) -> Callable[[int, list[Any]], Any]:
    method = actor.deliver.remote

    def call(seq: int, batch: list[Any]) -> Any:
        return method("parent", seq, batch)

    return call
