"""Worker processes of one run: starting them, talking to them, stopping them.

Start-up (in a thread, as it blocks): one ``socket.socketpair()`` per worker; the
process is started with the ``forkserver`` method (never a bare ``fork`` of a
threaded parent; the fork server preloads flowstage, the event loop backend and the
standard-library modules the main script uses, see :mod:`._preload`, so later runs
start fast), the set-up frame is sent, then one socketpair per pair of workers is
made and each end passed to its worker as a file descriptor over the parent socket.
The parent keeps only its own ends.

Shut-down, whatever ended the flow: the parent closes its sockets (a worker stops
when its parent socket closes), waits for the processes to exit, and kills those that
do not within a short deadline. A finalizer does the same if the pool is dropped
without being closed, so no worker outlives its flow.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from .._hosting import Quiescence, WorkerCrashed, remote_error, virtual_clock
from ._channel import Channel, ChannelClosed, write_frame_blocking
from ._preload import preload_modules
from ._text import piece_cache
from ._worker import worker_main

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess

__all__ = ["PARENT_WINDOW", "SEND_BUFFER", "WorkerPool", "start_method", "worker_socketpair"]

#: How long a worker may take to exit once its parent socket is closed.
EXIT_DEADLINE: Final = 2.0

#: How deep (times ``max_demand``) a worker may keep an edge from the parent (a
#: source), still within about ``RELAY_SECONDS`` of work and ``RELAY_BYTES``:
#: deeper than between workers, because every ask wakes the parent, which shares
#: the machine's cores with the workers, and a relay asks in steps of half its
#: window. For cheap events (map -> filter -> sum over integers) this took the
#: parent's CPU from 36 to 16 ms a run, and the run 7-9 % faster.
PARENT_WINDOW: Final = 64

#: The send buffer asked for the parent's end of each worker's socket (the kernel
#: caps it at ``net.core.wmem_max``). A source's batches are the largest stream a
#: run has; with Linux's default (about 208 KiB) a frame of several batches filled
#: it in pieces, and each piece cost the parent a wait for the socket and a turn of
#: its event loop: in a 2-worker word count of 20 MiB the parent's loop turned
#: 370-430 times a run, 200-310 with this buffer, and its CPU fell in five of six
#: alternated pairs of runs. It holds no more in flight: what a channel sends is
#: bounded by demand, and it waits in the kernel rather than in the channel.
SEND_BUFFER: Final = 1 << 20

_preload_lock = threading.Lock()


def start_method() -> str:
    """``"forkserver"`` where it exists (POSIX), else ``"spawn"``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _context(method: str, backend: str | None = None) -> Any:
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        with _preload_lock:
            # Workers forked from a server that imported flowstage and the event loop
            # backend start in milliseconds. Only the first run's backend is
            # preloaded (the fork server starts once per process); another backend is
            # imported by each worker that runs on it.
            ctx.set_forkserver_preload(preload_modules(backend))
    return ctx


def worker_socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair for a worker: the parent's end (with a send buffer of
    :data:`SEND_BUFFER`, or as large as the kernel allows), the worker's end."""
    parent_end, child_end = socket.socketpair()
    with contextlib.suppress(OSError):  # a smaller buffer still works
        parent_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    return parent_end, child_end


def _terminate(processes: list[BaseProcess], sockets: list[socket.socket]) -> None:
    """Close the sockets and make sure every process is gone (finalizer)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(EXIT_DEADLINE)
            if proc.is_alive():
                proc.kill()
                proc.join(EXIT_DEADLINE)


class WorkerPool:
    """The workers of one run and their channels.

    ``handle`` is called for every message a worker sends, in order per worker.
    """

    def __init__(self, workers: int, method: str | None = None) -> None:
        self.size = workers
        self.method = method or start_method()
        self.processes: list[BaseProcess] = []
        self.channels: list[Channel] = []
        self.partitions: list[list[str]] = [[] for _ in range(workers)]
        self.stopping = False
        self._finalizer: weakref.finalize[Any, Any] | None = None
        #: Hold a virtual clock while workers are busy (see :mod:`.._hosting._quiescence`).
        self.quiescence = Quiescence(workers, virtual_clock())
        self.track = self.quiescence.track

    # -- start-up -------------------------------------------------------------------------

    async def start(self, setups: list[dict[str, Any]]) -> None:
        """Start one worker per set-up (worker ``i`` gets ``setups[i]``)."""
        for setup in setups:
            setup["track"] = self.track
        if self.track:
            # A virtual clock must not jump while the workers start.
            done = anyio.Event()
            result: list[list[socket.socket]] = []

            async def start() -> None:
                try:
                    result.append(await anyio.to_thread.run_sync(self._start_blocking, setups))
                finally:
                    done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(start)
                while not done.is_set():
                    await anyio.lowlevel.checkpoint()
            socks = result[0]
        else:
            socks = await anyio.to_thread.run_sync(self._start_blocking, setups)
        pieces = piece_cache()  # one for every channel of this run
        self.channels = [
            Channel(s, f"parent -> worker {i}", merge=not self.track, pieces=pieces)
            for i, s in enumerate(socks)
        ]

    def _start_blocking(self, setups: list[dict[str, Any]]) -> list[socket.socket]:
        ctx = _context(self.method, setups[0].get("backend") if setups else None)
        mine: list[socket.socket] = []
        try:
            for index, setup in enumerate(setups):
                parent_end, child_end = worker_socketpair()
                mine.append(parent_end)
                proc = ctx.Process(
                    target=worker_main,
                    args=(index, child_end),
                    name=f"flowstage-worker-{index}",
                    daemon=True,
                )
                proc.start()
                child_end.close()
                self.processes.append(proc)
                write_frame_blocking(parent_end, [setup])
            self._finalizer = weakref.finalize(self, _terminate, list(self.processes), list(mine))
            for i in range(len(setups)):
                for j in range(i + 1, len(setups)):
                    a, b = socket.socketpair()
                    try:
                        socket.send_fds(mine[i], [str(j).encode("ascii")], [a.fileno()])
                        socket.send_fds(mine[j], [str(i).encode("ascii")], [b.fileno()])
                    finally:
                        a.close()
                        b.close()
        except BaseException:
            _terminate(self.processes, mine)
            raise
        return mine

    # -- running ------------------------------------------------------------------------------

    def send(self, worker: int, message: Any) -> None:
        self.channels[worker].send(message)
        if self.track:
            self.quiescence.sent(worker)

    async def serve(self, handle: Callable[[int, Any], None]) -> None:
        """Read and write every channel until cancelled; raise a worker's failure."""
        async with anyio.create_task_group() as tg:
            for index, channel in enumerate(self.channels):
                tg.start_soon(self._read, index, channel, handle)
                tg.start_soon(self._write, channel)
            if self.track:
                tg.start_soon(self.quiescence.hold_clock)

    async def _write(self, channel: Channel) -> None:
        with contextlib.suppress(ChannelClosed):  # the reader reports why
            await channel.write_loop()

    async def _read(self, index: int, channel: Channel, handle: Callable[[int, Any], None]) -> None:
        def on_message(message: Any) -> None:
            kind = message[0]
            if kind == "error":
                raise self._remote_error(index, message)
            if kind == "idle":
                self.quiescence.idle(index, message[1], message[2])
                return
            handle(index, message)

        await channel.read_loop(on_message)
        if not self.stopping:
            raise WorkerCrashed(index, tuple(self.partitions[index]), await self._exitcode(index))

    async def _exitcode(self, index: int) -> int | None:
        proc = self.processes[index]
        await anyio.to_thread.run_sync(proc.join, EXIT_DEADLINE)
        return proc.exitcode

    def _remote_error(self, index: int, message: tuple[Any, ...]) -> BaseException:
        self.stopping = True
        return remote_error(message, f"flowstage worker process {index}")

    # -- shut-down ----------------------------------------------------------------------------

    def release(self) -> None:
        """Every worker is done (see :meth:`HostPool.release`): tell them to stop now
        (a worker that then goes away is not a crash)."""
        self.stopping = True
        for channel in self.channels:
            channel.send(("stop",))

    def abort(self) -> None:
        """Stop every worker now, without waiting (the flow was dropped)."""
        self.stopping = True
        for channel in self.channels:
            channel.close()  # a worker stops when its parent socket closes
        for proc in self.processes:
            with contextlib.suppress(Exception):
                if proc.is_alive():
                    proc.kill()
        for proc in self.processes:
            with contextlib.suppress(Exception):
                proc.join(EXIT_DEADLINE)  # a killed process is gone in milliseconds
        if self._finalizer is not None:
            self._finalizer.detach()
        self.channels = []

    async def aclose(self) -> None:
        """Stop every worker (see the module docstring); safe to call more than once."""
        self.stopping = True
        for channel in self.channels:
            channel.close()
        finalizer = self._finalizer
        if finalizer is not None and finalizer.alive:
            # Wait on the event loop for the workers to end (a process's sentinel
            # becomes readable when it has); the finalizer then only reaps them. A
            # worker still there at the deadline is killed, and reaped in a thread
            # (a join blocks).
            with anyio.move_on_after(EXIT_DEADLINE):
                for proc in self.processes:
                    await anyio.wait_readable(proc.sentinel)
            late = [proc for proc in self.processes if proc.is_alive()]
            for proc in late:
                proc.kill()
            if late:
                await anyio.to_thread.run_sync(finalizer)
            else:
                finalizer()
        self.channels = []


def default_workers() -> int:
    """The default number of workers: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def running_backend() -> str:
    """The backend of the running event loop, to run workers on the same one."""
    import sniffio

    lib = sniffio.current_async_library()
    if lib == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        if type(loop).__module__.split(".")[0] == "uvloop":
            return "asyncio+uvloop"
        return "asyncio"
    return lib
