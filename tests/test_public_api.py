"""The public API, in the style of anyio's ``test_all_attributes``: every public
module has a tuple ``__all__`` that names exactly what it exports, and re-exported
names say where users find them (``flowstage.Flow.__module__ == "flowstage"``)."""

from __future__ import annotations

import importlib
import inspect
import pickle
from types import ModuleType

import pytest

import flowstage

PUBLIC_MODULES = (
    "flowstage",
    "flowstage.connectors",
    "flowstage.connectors.redis",
    "flowstage.dashboard",
    "flowstage.dashboard.terminal",
    "flowstage.dispatchers",
    "flowstage.executors",
    "flowstage.executors.process",
    "flowstage.executors.ray",
    "flowstage.flow",
    "flowstage.hooks",
    "flowstage.integrations",
    "flowstage.integrations.aiohttp",
    "flowstage.integrations.fastapi",
    "flowstage.lowlevel",
    "flowstage.messages",
    "flowstage.plan",
    "flowstage.program",
    "flowstage.prometheus",
    "flowstage.testing",
    "flowstage.dashboard.web",
)


def public_module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_a_tuple_of_existing_public_names(name: str) -> None:
    module = public_module(name)
    names = module.__all__
    assert isinstance(names, tuple), f"{name}.__all__ must be a tuple"
    assert len(names) == len(set(names)), name
    for attr in names:
        assert not attr.startswith("_"), attr
        assert hasattr(module, attr), f"{name}.{attr}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_class_and_function_is_in_all(name: str) -> None:
    """Nothing public is forgotten: a class or function defined in the package and
    reachable as ``module.X`` (not a submodule, not private) is listed."""
    module = public_module(name)
    missing = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("flowstage")
        and value.__module__ == name
        and attr not in module.__all__
    ]
    assert not missing, f"{name} exports {missing} without listing them in __all__"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_exported_classes_and_functions_live_in_a_public_module(name: str) -> None:
    """Reprs, tracebacks and pickles show ``flowstage.Flow``, never a private
    module such as ``flowstage.flow._builder``."""
    module = public_module(name)
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            home = value.__module__
            if home.startswith("flowstage"):
                assert home in PUBLIC_MODULES, f"{name}.{attr} lives in {home}"
                assert getattr(public_module(home), attr) is value


def test_the_main_types_are_at_the_top_level() -> None:
    for attr in ("Producer", "ProducerConsumer", "Consumer", "StageGroup", "stream", "Flow"):
        assert attr in flowstage.__all__
    assert flowstage.Flow.__module__ == "flowstage"
    assert flowstage.Window.__module__ == "flowstage"
    assert flowstage.plan.Plan.__module__ == "flowstage.plan"
    assert flowstage.executors.resolve.__module__ == "flowstage.executors"


def test_public_records_pickle_by_their_public_name() -> None:
    window = flowstage.Window.count(3)
    data = pickle.dumps(window)
    assert b"\x8c\tflowstage\x94" in data  # the module name, as a short string
    assert b"_window" not in data
    assert pickle.loads(data) == window
