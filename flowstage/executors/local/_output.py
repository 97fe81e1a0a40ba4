"""The end of a flow's output in the calling process: a sink, acknowledgements.

:class:`OutputStage` sits between a flow's last layer (or the proxies of a hosted
one) and whatever consumes the flow (the stream, ``run``'s drain, ``into_stages``
consumers) when the plan has an :class:`~flowstage.plan.OutputEnd`. For each batch,
in order: the sink writes the values (``await writer.write(values)``); the lineages
are settled (:class:`~flowstage.program.Ledger`) and the messages that are done are
handed to their source's :class:`~flowstage._acked.Acker`; the values go on (none
for ``run``). So a message is acknowledged only after everything derived from it
reached the end of the flow and was written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ..._errors import is_normal_reason
from ..._kinds import ProducerConsumer
from ...program import MARK, Ledger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..._acked import Acker
    from ...messages import Sink
    from ._sources import SubscriptionCounter

__all__ = ["OutputStage", "lineage_id", "split_lineage_id"]


def lineage_id(source: int, message_id: str) -> str:
    """The lineage id of message ``message_id`` of the plan's ``source``-th source."""
    return f"{source}:{message_id}"


def split_lineage_id(lin: str) -> tuple[int, str]:
    index, _, message_id = lin.partition(":")
    return int(index), message_id


class OutputStage(ProducerConsumer[Any, Any]):
    """See the module docstring. Finishes once every upstream ended normally."""

    def __init__(
        self,
        *,
        writer: Sink | None,
        ackers: list[Acker] | None,
        discard: bool,
        counter: SubscriptionCounter,
        name: str,
    ) -> None:
        super().__init__(name=name)
        self._writer = writer
        self._ackers = ackers
        self._ledger = Ledger() if ackers is not None else None
        self._discard = discard
        self._counter = counter
        self._live = 0

    def expect_upstream(self) -> None:
        self._live += 1

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._counter.subscribed()
        return "automatic"

    async def handle_events(self, events: list[Any], from_: Any) -> list[Any]:
        ledger = self._ledger
        values = events if ledger is None else [e.value for e in events if e.value is not MARK]
        if self._writer is not None and values:
            try:
                await self._writer.write(values)
            except Exception as exc:
                exc.add_note(f"raised by the sink of the flow ({self._writer!r})")
                raise
        if ledger is not None:
            acked, failed = ledger.settle([e.lin for e in events])
            self._settle(acked, failed)
        return [] if self._discard else values

    def _settle(self, acked: list[str], failed: list[tuple[str, BaseException]]) -> None:
        ackers = self._ackers
        assert ackers is not None
        if len(ackers) == 1:
            (acker,) = ackers
            acker.settled(
                [split_lineage_id(i)[1] for i in acked],
                [(split_lineage_id(i)[1], e) for i, e in failed],
            )
            return
        by: dict[int, tuple[list[str], list[tuple[str, BaseException]]]] = {}
        for lin in acked:
            k, mid = split_lineage_id(lin)
            by.setdefault(k, ([], []))[0].append(mid)
        for lin, exc in failed:
            k, mid = split_lineage_id(lin)
            by.setdefault(k, ([], []))[1].append((mid, exc))
        for k, (a, f) in by.items():
            ackers[k].settled(a, f)

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        if is_normal_reason(reason[1]):
            self._live -= 1
            if self._live == 0:
                self.finish()
        # An abnormal end stops this stage with the same reason (the flow fails).
