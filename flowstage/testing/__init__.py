"""Helpers for testing code built on flowstage without sleeping, and the
conformance kit every executor passes (:func:`check_executor`)."""

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._conformance import Collector as Collector
from ._conformance import ConformanceCase as ConformanceCase
from ._conformance import ConformanceFailure as ConformanceFailure
from ._conformance import check_executor as check_executor
from ._conformance import conformance_cases as conformance_cases
from ._quiescence import wait_quiescent as wait_quiescent
from ._quiescence import wait_until as wait_until

__all__ = (
    "Collector",
    "ConformanceCase",
    "ConformanceFailure",
    "check_executor",
    "conformance_cases",
    "wait_quiescent",
    "wait_until",
)

_fixup_module_metadata(__name__, __all__)
