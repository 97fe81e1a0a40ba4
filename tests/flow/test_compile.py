from __future__ import annotations

from typing import Any

import pytest

import flowstage
from flowstage.flow import CompiledFlow, Flow, Window
from flowstage.plan import (
    AsyncIterableSource,
    IterableSource,
    LayerInput,
    Mapper,
    Plan,
    Reduce,
    StagesSource,
    ThroughStagesSource,
    Uniq,
)

from ..stages import Doubler


def compiled(flow: Flow[Any], **kw: Any) -> CompiledFlow:
    return flow.compile(**kw)


def compile_flow(flow: Flow[Any], **kw: Any) -> Plan:
    return flow.compile(**kw).plan


def test_source_with_ops_is_one_fused_layer() -> None:
    f = Flow.from_iterables([[1], [2]], stages=3).map(str).filter(bool).flat_map(list)
    plan, bindings = compiled(f)
    (layer,) = plan.layers
    assert layer.stages == 3
    assert (layer.max_demand, layer.min_demand) == (1000, 500)
    src = layer.inputs[0].source
    assert isinstance(src, IterableSource)
    assert [bindings.resolve(ref) for ref in src.iterables] == [[1], [2]]
    assert layer.inputs[0].dispatch.kind == "demand"
    assert [m.kind for m in layer.ops.mappers if isinstance(m, Mapper)] == [
        "map",
        "filter",
        "flat_map",
    ]
    assert plan.output[0].source == 0
    assert plan.sink == "stream"


def test_source_without_ops_is_the_output() -> None:
    plan, bindings = compiled(Flow.from_iterable([1, 2]))
    assert plan.layers == ()
    src = plan.output[0].source
    assert isinstance(src, IterableSource)
    assert [bindings.resolve(ref) for ref in src.iterables] == [[1, 2]]


def test_partition_creates_layer_fed_by_hash() -> None:
    f = (
        Flow.from_iterable(range(10), stages=2)
        .map(abs)
        .partition(stages=4)
        .reduce(list, list.__add__)
    )
    plan = compile_flow(f)
    assert len(plan.layers) == 2
    _, down = plan.layers
    assert down.inputs[0].source == 0
    d = down.inputs[0].dispatch
    assert d.kind == "partition"
    assert d.partitions == 4
    assert d.hash is not None
    ev, part = d.hash(7)  # type: ignore[misc]
    assert ev == 7
    assert 0 <= part < 4
    assert isinstance(down.ops.reducer, Reduce)


def test_partition_of_source_without_ops_dispatches_directly() -> None:
    plan = compile_flow(Flow.from_iterable([1]).partition(stages=2).map(abs))
    (layer,) = plan.layers
    assert isinstance(layer.inputs[0].source, IterableSource)
    assert layer.inputs[0].dispatch.kind == "partition"


def test_partition_stages_1_ignores_hash_and_key() -> None:
    f = Flow.from_iterable([1]).partition(stages=1, key=lambda x: x).map(abs)
    (layer,) = compile_flow(f).layers
    assert layer.inputs[0].dispatch.kind == "demand"
    assert layer.inputs[0].dispatch.hash is None


def test_partition_key_forms() -> None:
    for key, ev in [(("elem", 1), ("a", "b")), (("key", "k"), {"k": 1}), (len, "abc")]:
        f = Flow.from_iterable([ev]).partition(stages=3, key=key).map(abs)
        (layer,) = compile_flow(f).layers
        h = layer.inputs[0].dispatch.hash
        assert h is not None
        assert h(ev)[0] == ev  # type: ignore[index]


def test_custom_hash_is_used() -> None:
    def h(e: int) -> tuple[int, int]:
        return e, e % 2

    (layer,) = compile_flow(Flow.from_iterable([1]).partition(stages=2, hash=h).map(abs)).layers
    assert layer.inputs[0].dispatch.hash is h


def test_merge_without_ops_is_compiled_away() -> None:
    a = Flow.from_iterable([1], stages=1).map(abs)
    b = Flow.from_async_iterable(_agen(), stages=1).map(abs)
    plan = compile_flow(Flow.merge([a, b], stages=7).partition(stages=2).uniq())
    assert len(plan.layers) == 3
    last = plan.layers[2]
    assert [i.source for i in last.inputs] == [0, 1]
    assert all(i.dispatch.kind == "partition" for i in last.inputs)
    assert isinstance(plan.layers[1].inputs[0].source, AsyncIterableSource)
    assert isinstance(last.ops.mappers[0], Uniq)


def test_merge_with_ops_is_a_demand_layer() -> None:
    a = Flow.from_iterable([1]).map(abs)
    plan = compile_flow(Flow.merge([a, a], stages=2).map(abs))
    assert [i.source for i in plan.layers[2].inputs] == [0, 1]
    assert plan.layers[2].inputs[0].dispatch.kind == "demand"


def test_shuffle_is_a_demand_layer() -> None:
    plan = compile_flow(Flow.from_iterable([1]).map(abs).shuffle(stages=2).map(abs))
    assert plan.layers[1].inputs[0].dispatch.kind == "demand"


def test_from_stages_partition_gets_identity_layer() -> None:
    producer = flowstage.from_iterable([1])
    plan, bindings = compiled(Flow.from_stages([producer], stages=2).partition(stages=3).map(abs))
    ident, layer = plan.layers
    assert not ident.ops.has_computation
    src = ident.inputs[0].source
    assert isinstance(src, StagesSource)
    assert [bindings.resolve(ref) for ref in src.producers] == [producer]
    assert layer.inputs[0].source == 0
    # with demand downstream, no identity layer
    plan, bindings = compiled(Flow.from_stages([producer]).shuffle(stages=2).map(abs))
    src = plan.layers[0].inputs[0].source
    assert isinstance(src, StagesSource)
    assert [bindings.resolve(ref) for ref in src.producers] == [producer]


def test_through_stages() -> None:
    pc = Doubler()
    plan, bindings = compiled(Flow.from_iterable([1]).map(abs).through_stages([pc]).map(abs))
    src = plan.layers[1].inputs[0].source
    assert isinstance(src, ThroughStagesSource)
    assert [bindings.resolve(ref) for ref in src.stages] == [pc]
    assert src.inputs[0].source == 0


def test_window_on_layer_without_computation() -> None:
    with pytest.raises(ValueError, match="no computation is happening"):
        compile_flow(Flow.from_iterable([1], window=Window.count(2)))


def test_run_discards_final_output() -> None:
    plan = compile_flow(Flow.from_iterable([1]).map(abs).partition().map(abs), sink="run")
    assert [layer.discard_output for layer in plan.layers] == [False, True]


def test_departition_and_take_sort_layers() -> None:
    up = Flow.from_iterable([1], stages=3).reduce(list, list.__add__)
    plan = compile_flow(up.departition(list, list.__add__, sorted, window=Window.count(3)))
    a, b = plan.layers
    assert a.output_tag is not None
    assert b.kind == "departition"
    assert b.stages == 1
    assert b.departition is not None
    assert b.departition.partitions == 3
    plan = compile_flow(up.take_sort(2))
    assert plan.layers[1].stages == 1


def test_join_layer() -> None:
    left = Flow.from_iterable([1])
    right = Flow.from_stages([flowstage.from_iterable([1])])
    plan = compile_flow(Flow.bounded_join("inner", left, right, abs, abs, max, stages=1))
    assert [layer.kind for layer in plan.layers] == ["map_reduce", "join"]
    join = plan.layers[1]
    assert all(i.dispatch.kind == "partition" for i in join.inputs)
    h = join.inputs[0].dispatch.hash
    assert h is not None
    assert h(-5) == ((0, 5, -5), 0)


def test_default_stages_is_cpu_count() -> None:
    import os

    (layer,) = compile_flow(Flow.from_iterable([1]).map(abs)).layers
    assert layer.stages == (os.cpu_count() or 1)


def test_flow_is_immutable_and_reusable() -> None:
    base = Flow.from_iterable([1], stages=1)
    a = base.map(abs)
    assert base is not a
    assert compile_flow(base).layers == ()
    assert "Mapper" in repr(a)


async def _agen():  # type: ignore[no-untyped-def]
    yield 1


def test_a_trailing_partition_keeps_its_layer() -> None:
    plan = compile_flow(Flow.from_iterable(range(10)).partition(stages=2, key=lambda x: x % 2))
    assert len(plan.layers) == 1
    (inp,) = plan.layers[0].inputs
    assert inp.dispatch.kind == "partition"
    assert plan.output == (LayerInput(0),)
