"""Batches queued for one write on the same edge go as one batch.

A worker writes what it queued for a peer at most every ``SEND_EVERY`` (see
:mod:`flowstage.executors._hosting._host`), so one write often holds several
batches for the same edge: a partition's output is placed as demand arrives, and
each ask of its local consumer (a few hundred events) releases a slice whose share
for a partition in another process goes out as a batch of its own. Joined, they
cost the receiver one message, one relay call and one split of joined text
instead of one each.

Order is kept on every edge: a batch joins the earlier batch of its edge only when
no other message of that edge (its ``"done"``) and no message that is not about an
edge (statistics, deadlines, triggers: the host's own messages, whose place among
the events may matter) was queued between them. Only plain lists are joined (a
``range`` of a range source, or a list subclass, keeps its type).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["merge_batches"]

_EDGE_KINDS: Final = frozenset({"events", "ask"})


def merge_batches(messages: list[Any]) -> list[Any]:
    """``messages`` with each ``("events", edge, list)`` joined into the previous
    one on its edge where the rules above allow (see the module docstring); the
    same list when nothing joins. A joined batch is a new list (the originals may
    still be held by their sender)."""
    if len(messages) < 2:
        return messages
    out: list[Any] | None = None
    # edge -> (index in `out` of the batch that may grow, whether it is ours)
    open_: dict[int, tuple[int, bool]] = {}
    for i, message in enumerate(messages):
        kind = message[0]
        if kind not in _EDGE_KINDS:
            open_.clear()
        elif kind == "events":
            edge = message[1]
            batch = message[2]
            if type(batch) is not list:
                open_.pop(edge, None)
            else:
                at = open_.get(edge)
                if at is not None:
                    if out is None:
                        out = messages[:i]
                    index, ours = at
                    head = out[index]
                    if ours:
                        head[2].extend(batch)
                    else:
                        out[index] = ("events", edge, head[2] + batch)
                        open_[edge] = (index, True)
                    continue
                open_[edge] = (i if out is None else len(out), False)
        if out is not None:
            out.append(message)
    return messages if out is None else out
