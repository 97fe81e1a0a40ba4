"""Errors of the executors that run partitions away from the parent (processes, actors)."""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["FlowNotPortable", "RemoteError", "WorkerCrashed", "remote_error"]


class WorkerCrashed(RuntimeError):
    """A host of partitions (a worker process, a Ray actor) ended without being asked
    to: killed, a crash, ``os._exit``, a lost node.

    The partitions it hosted are lost, so the flow fails; every other host is stopped.
    ``host`` says what kind of host it was (``"worker process"``, ``"Ray actor"``);
    ``exitcode`` is the process's exit code when it is known.
    """

    def __init__(
        self,
        worker: int,
        partitions: tuple[str, ...],
        exitcode: int | None,
        host: str = "worker process",
        detail: str = "",
    ) -> None:
        hosted = ", ".join(partitions) if partitions else "no partitions"
        code = "an unknown code" if exitcode is None else f"code {exitcode}"
        why = f": {detail}" if detail else ""
        super().__init__(
            f"flowstage {host} {worker} (hosting {hosted}) exited unexpectedly with {code}{why}"
        )
        self.worker = worker
        self.partitions = partitions
        self.exitcode = exitcode
        self.host = host
        self.detail = detail

    def __reduce__(
        self,
    ) -> tuple[type[WorkerCrashed], tuple[int, tuple[str, ...], int | None, str, str]]:
        return (
            WorkerCrashed,
            (self.worker, self.partitions, self.exitcode, self.host, self.detail),
        )


class RemoteError(Exception):
    """A callback on a host raised an exception that could not be sent to the parent
    (it does not pickle); ``type_name`` and the message say what it was."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str]]:
        return (RemoteError, (self.type_name, self.message))


class FlowNotPortable(TypeError):
    """The flow cannot run away from this process: part of its plan cannot be sent to
    the hosts. ``problems`` lists each part with its path and a fix."""

    def __init__(
        self, problems: list[str], executor: str = "process", hosts: str = "worker processes"
    ) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"this flow cannot run on the {executor} executor, because parts of it cannot be "
            f"sent to {hosts}:\n{lines}"
        )
        self.problems = problems
        self.executor = executor
        self.hosts = hosts

    def __reduce__(self) -> tuple[type[FlowNotPortable], tuple[list[str], str, str]]:
        return (FlowNotPortable, (self.problems, self.executor, self.hosts))


def remote_error(message: tuple[Any, ...], where: str) -> BaseException:
    """The exception an ``("error", data, type name, text, traceback)`` message from a
    host stands for: the original one when it unpickles, else a :class:`RemoteError`;
    with a note saying ``where`` it was raised and its remote traceback."""
    _, data, type_name, text, tb = message
    exc: BaseException
    if data is not None:
        try:
            exc = pickle.loads(data)
        except Exception:
            exc = RemoteError(type_name, text)
    else:
        exc = RemoteError(type_name, text)
    exc.add_note(f"raised in {where}; its traceback:\n{tb.rstrip()}")
    return exc
