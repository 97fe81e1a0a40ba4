"""Test stages mirroring the fixtures of GenStage's own test suite."""

from __future__ import annotations

from typing import Any

import anyio

from flowstage import Consumer, Producer, ProducerConsumer, Reply, Subscription


class Counter(Producer[Any]):
    """Emits ``c..c+d-1`` on demand ``d``; can also emit given events on request."""

    def __init__(self, start: int = 0, **opts: Any) -> None:
        super().__init__(**opts)
        self.counter = start
        self.cancels: list[tuple[tuple[str, object], Subscription[Any]]] = []

    def handle_demand(self, demand: int) -> list[int]:
        events = list(range(self.counter, self.counter + demand))
        self.counter += demand
        return events

    def handle_info(self, message: Any) -> list[Any] | None:
        if isinstance(message, tuple) and message[0] == "queue":
            return list(message[1])
        return None

    def handle_call(self, request: Any, from_: Reply) -> Any:
        if request[0] == "queue":
            self.emit(request[1])
            return "ok"
        if request[0] == "early_reply":
            from_.reply("early")
            self.emit(request[1])
            return None
        raise ValueError(request)

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        self.cancels.append((reason, from_))


class Forwarder(Consumer[Any]):
    """Records every batch it handles, and every cancel it sees."""

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.batches: list[list[Any]] = []
        self.cancels: list[tuple[str, object]] = []
        self.infos: list[Any] = []

    def handle_events(self, events: list[Any], from_: Subscription[Any]) -> None:
        self.batches.append(list(events))

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        self.cancels.append(reason)

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)

    @property
    def events(self) -> list[Any]:
        return [e for b in self.batches for e in b]


class ManualForwarder(Forwarder):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.subscriptions: list[Subscription[Any]] = []

    def handle_subscribe(self, kind: Any, options: Any, from_: Any) -> str:
        self.subscriptions.append(from_)
        return "manual"


class Doubler(ProducerConsumer[Any, Any]):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.handled: list[list[Any]] = []
        self.cancels: list[tuple[str, object]] = []
        self.infos: list[Any] = []

    def handle_events(self, events: list[Any], from_: Subscription[Any]) -> list[Any]:
        self.handled.append(list(events))
        return [e for e in events for _ in (0, 1)]

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        self.cancels.append(reason)

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)


class Discarder(ProducerConsumer[Any, Any]):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.handled: list[list[Any]] = []

    def handle_events(self, events: list[Any], from_: Subscription[Any]) -> list[Any]:
        self.handled.append(list(events))
        return []


class Postponer(ProducerConsumer[Any, Any]):
    """Re-emits each batch later, from handle_info."""

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.postponed: list[list[Any]] = []

    def handle_events(self, events: list[Any], from_: Subscription[Any]) -> list[Any]:
        self.postponed.append(list(events))
        self.send(("postponed", list(events)))
        return []

    def handle_info(self, message: Any) -> list[Any]:
        return list(message[1])


class Sleeper(Consumer[Any]):
    """Blocks forever after its first batch."""

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.batches: list[list[Any]] = []

    async def handle_events(self, events: list[Any], from_: Subscription[Any]) -> None:
        self.batches.append(list(events))
        await anyio.sleep_forever()


class DemandProducer(Producer[Any]):
    """Emits ``[demand]`` for every handle_demand."""

    def handle_demand(self, demand: int) -> list[int]:
        return [demand]


class NothingProducer(Producer[Any]):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.demands: list[int] = []

    def handle_demand(self, demand: int) -> None:
        self.demands.append(demand)
