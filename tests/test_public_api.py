"""The public API: every exported name exists and nothing private leaks into __all__."""

from __future__ import annotations

import flowstage
import flowstage.dispatchers
import flowstage.flow
import flowstage.testing


def test_all_names_exist_and_are_public() -> None:
    for module in (flowstage, flowstage.dispatchers, flowstage.flow, flowstage.testing):
        names = list(module.__all__)
        assert len(names) == len(set(names)), module.__name__
        for name in names:
            assert not name.startswith("_"), name
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_top_level_exports_the_main_types() -> None:
    for name in ("Producer", "ProducerConsumer", "Consumer", "StageGroup", "stream", "Flow"):
        assert name in flowstage.__all__
