"""Live objects: what a plan refers to but never contains.

A plan is portable data, but a flow also uses objects that live in the process that
built it: the iterables a source reads (lists, generators, open files), the
running stages of ``from_stages``/``through_stages``/``into_stages``, push handles.
The plan names each of them with a :class:`LocalRef`, a small record, and the
objects themselves sit in :class:`Bindings`, which the building process keeps and
never ships. An executor that runs part of a flow elsewhere (another process, a
cluster) runs the sources in the process that holds the bindings and sends the
events on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["Bindings", "LocalRef"]


@dataclass(frozen=True, slots=True)
class LocalRef:
    """A live object of the building process, resolved through :class:`Bindings`.

    ``what`` says what it is (``"iterable"``, ``"async iterable"``, ``"stage"``),
    for messages.
    """

    id: int
    what: str


class Bindings:
    """The live objects a plan's :class:`LocalRef` entries stand for.

    Kept by the process that compiled the flow and handed to the executor next to
    the plan; it cannot be pickled (it holds generators, files, running stages).
    """

    __slots__ = ("_objects",)

    def __init__(self) -> None:
        self._objects: list[object] = []

    def add(self, obj: object, what: str) -> LocalRef:
        """Keep ``obj`` and return the reference to put in the plan."""
        self._objects.append(obj)
        return LocalRef(len(self._objects) - 1, what)

    def resolve(self, ref: LocalRef) -> Any:
        """The object ``ref`` stands for.

        Raises:
            LookupError: ``ref`` does not belong to these bindings.
        """
        if not 0 <= ref.id < len(self._objects):
            raise LookupError(f"{ref!r} is not bound here (it belongs to another compilation)")
        return self._objects[ref.id]

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"<Bindings of {len(self._objects)} live objects>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "Bindings hold live objects of this process (iterables, running stages) "
            "and cannot be pickled; ship the Plan only"
        )
