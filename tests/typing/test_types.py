"""Typing on the common paths (issue 13): ordinary user code passes
``mypy --strict`` with precise element types, and it runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from . import user_code

HERE = Path(__file__).resolve().parent


def mypy_strict(path: Path) -> tuple[str, int]:
    out, err, status = api.run(["--strict", "--no-error-summary", str(path)])
    return out + err, status


def test_user_code_passes_mypy_strict() -> None:
    # assert_type in the file checks every chain's element type.
    out, status = mypy_strict(HERE / "user_code.py")
    assert status == 0, out


REVEALED = {
    "words": "flowstage.flow._builder.Flow[str]",
    "counts": ("flowstage.flow._builder.ReducedFlow[tuple[str, int], dict[str, int]]"),
    "pairs": "list[tuple[str, int]]",
    "by_length": (
        "flowstage.flow._builder.ReducedFlow[tuple[int, list[str]], dict[int, list[str]]]"
    ),
    "state": "flowstage.flow._builder.ReducedFlow[int, int]",
    "sizes": ("flowstage.flow._builder.ReducedFlow[int, dict[str, int]]"),
    "batch": "list[str]",
    "running": "flowstage.executors._base.RunningFlow",
    "loop": "flowstage.executors._base.AsyncForIterator[int]",
}

PROGRAM = """
    from flowstage import Flow

    def count(acc: dict[str, int], word: str) -> dict[str, int]:
        acc[word] = acc.get(word, 0) + 1
        return acc

    def add(acc: int, x: int) -> int:
        return acc + x

    async def main() -> None:
        words = Flow.from_iterable(["a b", "c"]).flat_map(str.split)
        counts = words.partition().reduce(dict, count)
        pairs = await counts.to_list()
        by_length = words.group_by(len)
        state = Flow.from_iterable(range(3)).reduce(lambda: 0, add).emit("state")
        sizes = counts.on_trigger(lambda acc: ([len(acc)], acc))
        async with words.stream() as events:
            async for batch in events.batches():
                reveal_type(batch)
        async with words.start() as running:
            reveal_type(running)
        loop = Flow.from_iterable(range(3)).iterate()
        reveal_type(words)
        reveal_type(counts)
        reveal_type(pairs)
        reveal_type(by_length)
        reveal_type(state)
        reveal_type(sizes)
        reveal_type(loop)
"""


def test_reveal_type_of_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "chain.py"
    path.write_text(textwrap.dedent(PROGRAM))
    out, status = mypy_strict(path)
    assert status == 0, out  # reveal_type notes only
    revealed = {}
    for line in out.splitlines():
        if "Revealed type is" in line:
            source = textwrap.dedent(PROGRAM).splitlines()[int(line.split(":")[1]) - 1]
            name = source.strip().removeprefix("reveal_type(").removesuffix(")")
            shown = line.split('Revealed type is "')[1].rstrip('"')
            revealed[name] = shown.replace("builtins.", "")  # older mypy spells it out
    assert revealed == {name: REVEALED[name] for name in revealed}
    assert set(revealed) == set(REVEALED)


@pytest.mark.anyio
async def test_user_code_runs() -> None:
    await user_code.main()
