"""Errors of the executors that run partitions away from the parent (processes, actors)."""

from __future__ import annotations

__all__ = ["FlowNotPortable", "RemoteError", "WorkerCrashed"]


class WorkerCrashed(RuntimeError):
    """A worker process ended without being asked to (killed, a crash, ``os._exit``).

    The partitions it hosted are lost, so the flow fails; every other worker is
    stopped.
    """

    def __init__(self, worker: int, partitions: tuple[str, ...], exitcode: int | None) -> None:
        hosted = ", ".join(partitions) if partitions else "no partitions"
        code = "an unknown code" if exitcode is None else f"code {exitcode}"
        super().__init__(
            f"flowstage worker process {worker} (hosting {hosted}) exited unexpectedly with {code}"
        )
        self.worker = worker
        self.partitions = partitions
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[type[WorkerCrashed], tuple[int, tuple[str, ...], int | None]]:
        return (WorkerCrashed, (self.worker, self.partitions, self.exitcode))


class RemoteError(Exception):
    """A callback in a worker raised an exception that could not be sent to the
    parent (it does not pickle); ``type_name`` and the message say what it was."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str]]:
        return (RemoteError, (self.type_name, self.message))


class FlowNotPortable(TypeError):
    """The flow cannot run in worker processes: part of its plan cannot be sent to
    them. ``problems`` lists each part with its path and a fix."""

    def __init__(self, problems: list[str]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            "this flow cannot run on the process executor, because parts of it cannot be "
            f"sent to worker processes:\n{lines}"
        )
        self.problems = problems

    def __reduce__(self) -> tuple[type[FlowNotPortable], tuple[list[str]]]:
        return (FlowNotPortable, (self.problems,))
