"""Services: events pushed over HTTP at a steady rate, read back over SSE by 100 clients.

A server process runs a flow behind the integrations' conventions (``POST /events``
a JSON array, ``GET /results`` Server-Sent Events): uvicorn with the FastAPI
helpers, or aiohttp with its helpers, each on asyncio. The flow is
``Flow.from_push`` → ``map_batch`` (each event, a send time, turned into its JSON
text once, so the service's ``encode`` is ``str`` for every client).

This process is the load: a generator posts the events due every 10 ms (the rate
times the time elapsed, one POST per tick, so a slow answer is caught up by the
next, larger batch), each event the ``time.monotonic()`` of its POST (the same
clock in both processes on one machine); ``--clients`` SSE clients (100) read the
feed. Every client counts the events it receives and, for each chunk read from the
socket, takes the latency of the chunk's first event (the oldest in it):
``monotonic()`` on arrival minus its send time. The first 10 % of the run is a
warm-up and is not counted. One more client is deliberately slow (it reads 4 KiB
every 100 ms): its buffer on the server fills, it loses the oldest events
(``slow="drop_oldest"``), and the other clients are not held by it.

Reported per case: the rate held (events the server accepted per second), the
delivery to the normal clients (events received over events sent), p50 and p99 of
their latency, what the slow client received and the events the server dropped for
it, and the server's resident memory (after the warm-up, at its peak, at the end).

    python benchmarks/flow_service.py [--seconds S] [--clients N] [--rate R ...]
                                      [--framework fastapi|aiohttp ...] [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
from fastapi import Request  # read by FastAPI from the route's annotations

ROWS: tuple[str, ...] = (
    "fastapi: 1,000 events/s",
    "fastapi: 10,000 events/s",
    "aiohttp: 1,000 events/s",
    "aiohttp: 10,000 events/s",
)

TICK = 0.01
WARMUP = 0.1
SLOW_READ = 4096
SLOW_PAUSE = 0.1


# -- the server process -------------------------------------------------------------


def _json_texts(batch: list[float]) -> list[str]:
    return [repr(t) for t in batch]


def _service() -> Any:
    from flowstage import Flow
    from flowstage.integrations import FlowService

    events, push = Flow.from_push[float](capacity=10_000)
    return FlowService(
        events.map_batch(_json_texts), push, encode=str, buffer=10_000, max_body=4 * 1024 * 1024
    )


def _stats(service: Any) -> dict[str, Any]:
    s = service.running.statistics()
    return {
        "events_in": s.events_in,
        "events_out": s.events_out,
        "subscribers": s.subscribers,
        "subscriber_dropped": s.subscriber_dropped,
    }


def serve(framework: str) -> None:
    """Serve on 127.0.0.1 (an ephemeral port, printed first) until SIGTERM."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    service = _service()
    if framework == "fastapi":
        import uvicorn
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        from flowstage.integrations import fastapi as helpers

        app = FastAPI(lifespan=service.lifespan)

        @app.post("/events", status_code=202)
        async def events(request: Request) -> dict[str, int]:
            return {"accepted": await helpers.ingest(service, request)}

        @app.get("/results")
        async def results() -> Any:
            return helpers.sse_response(service)

        @app.get("/stats")
        async def stats() -> JSONResponse:
            return JSONResponse(_stats(service))

        config = uvicorn.Config(
            app, log_config=None, loop="asyncio", timeout_graceful_shutdown=2, access_log=False
        )
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from aiohttp import web

        from flowstage.integrations import aiohttp as helpers

        async def stats_handler(request: web.Request) -> web.Response:
            return web.json_response(_stats(service))

        app = web.Application()
        helpers.setup(app, service)
        app.router.add_post("/events", helpers.push_handler(service))
        app.router.add_get("/results", helpers.sse_handler(service))
        app.router.add_get("/stats", stats_handler)
        web.run_app(app, sock=sock, shutdown_timeout=2, print=None, access_log=None)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds process ``pid`` used so far (Linux; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (Linux; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the load -----------------------------------------------------------------------


class Client:
    """One SSE reader: events received, latencies of each chunk's first event."""

    def __init__(self, slow: bool = False) -> None:
        self.slow = slow
        self.events = 0
        self.latencies: list[float] = []
        self.connected = anyio.Event()
        #: Set once the client received ``target[0]`` events (set by the load).
        self.caught_up = anyio.Event()

    async def read(
        self, session: Any, url: str, measure_from: list[float], target: list[float]
    ) -> None:
        async with session.get(url) as response:
            assert response.status == 200, response.status
            self.connected.set()
            pending = b""
            while True:
                if self.slow:
                    chunk = await response.content.read(SLOW_READ)
                    await anyio.sleep(SLOW_PAUSE)
                else:
                    chunk = await response.content.readany()
                if not chunk:
                    return
                now = time.monotonic()
                pending += chunk
                end = pending.rfind(b"\n\n")
                if end < 0:
                    continue
                complete, pending = pending[: end + 2], pending[end + 2 :]
                n = complete.count(b"data: ")
                if not n:
                    continue
                self.events += n
                if self.events >= target[0]:
                    self.caught_up.set()
                if measure_from[0] and now >= measure_from[0]:
                    start = complete.index(b"data: ") + 6
                    sent = float(complete[start : complete.index(b"\n", start)])
                    self.latencies.append(now - sent)


async def get_json(session: Any, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


async def load(base: str, pid: int, rate: float, seconds: float, clients: int) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    readers = [Client() for _ in range(clients)]
    slow = Client(slow=True)
    measure_from = [0.0]
    target = [float("inf")]
    rss: list[tuple[float, int]] = []
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        anyio.create_task_group() as tg,
    ):
        for client in [*readers, slow]:
            tg.start_soon(client.read, session, base + "/results", measure_from, target)
        for client in [*readers, slow]:
            await client.connected.wait()
        while (await get_json(session, base + "/stats"))["subscribers"] < clients + 1:
            pass
        before = await get_json(session, base + "/stats")
        sent = accepted = 0
        cpu_before = cpu_seconds(pid), cpu_seconds(os.getpid())
        start = time.monotonic()
        measure_from[0] = start + WARMUP * seconds
        next_rss = start
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                now = time.monotonic()
                async with session.post(base + "/events", json=[now] * due) as r:
                    assert r.status == 202, await r.text()
                    accepted += (await r.json())["accepted"]
                sent += due
            if time.monotonic() >= next_rss:
                rss.append((time.monotonic() - start, rss_kib(pid)))
                next_rss += 1.0
            await anyio.sleep(TICK)
        took = time.monotonic() - start
        held = accepted / took
        server_cpu = (cpu_seconds(pid) - cpu_before[0]) / took
        load_cpu = (cpu_seconds(os.getpid()) - cpu_before[1]) / took
        # Let the normal clients receive what is in flight (bounded).
        target[0] = sent
        with anyio.move_on_after(5):
            for client in readers:
                if client.events >= sent:
                    client.caught_up.set()
                await client.caught_up.wait()
        after = await get_json(session, base + "/stats")
        tg.cancel_scope.cancel()
    latencies = sorted(x for c in readers for x in c.latencies)
    after_warmup = [kib for t, kib in rss if t >= WARMUP * seconds] or [kib for _, kib in rss]
    return {
        "held": held,
        "sent": sent,
        "delivered": sum(c.events for c in readers) / (sent * len(readers)) if sent else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "slow_received": slow.events,
        "dropped": after["subscriber_dropped"] - before["subscriber_dropped"],
        "cpu": (server_cpu, load_cpu),
        "rss_mib": (after_warmup[0] / 1024, max(after_warmup) / 1024, after_warmup[-1] / 1024),
    }


def run_case(framework: str, rate: float, seconds: float, clients: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", framework],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        return anyio.run(load, base, server.pid, rate, seconds, clients, backend="asyncio")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--serve", choices=("fastapi", "aiohttp"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, action="append", default=None)
    parser.add_argument("--framework", action="append", choices=("fastapi", "aiohttp"))
    parser.add_argument("--quick", action="store_true", help="1 s, 5 clients")
    args, _ = parser.parse_known_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    seconds, clients = args.seconds, args.clients
    if args.quick:
        seconds, clients = 1.0, 5
    rates: list[float] = args.rate or [1_000.0, 10_000.0]
    frameworks: list[str] = args.framework or ["fastapi", "aiohttp"]
    print(
        f"## Services: HTTP push to SSE ({seconds:g} s per case, {clients} SSE clients "
        "and 1 slow one)\n"
    )
    print(
        "| backend | case | rate held (events/s) | delivered | p50 latency | p99 latency "
        "| slow client got | dropped | CPU server / load | server RSS MiB (start / peak / end) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    loads = [os.getloadavg()[0]]
    for framework in frameworks:
        for rate in rates:
            r = run_case(framework, rate, seconds, clients)
            loads.append(os.getloadavg()[0])
            start, peak, end = r["rss_mib"]
            server_cpu, load_cpu = r["cpu"]
            print(
                f"| asyncio | {framework}: {rate:,.0f} events/s | {r['held']:,.0f} "
                f"| {100 * r['delivered']:.1f} % | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
                f"| {r['slow_received']:,} | {r['dropped']:,} "
                f"| {100 * server_cpu:.0f} % / {100 * load_cpu:.0f} % "
                f"| {start:.0f} / {peak:.0f} / {end:.0f} |",
                flush=True,
            )
    print(
        f"\nThe machine's load average (1 min) between the cases: "
        f"{', '.join(f'{x:.1f}' for x in loads)} ({os.cpu_count()} cores).\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
