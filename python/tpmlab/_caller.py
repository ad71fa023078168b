"""Where the user's code called tpmlab from, so errors about steps built in
Python name that file:line instead of the YAML text tpmlab wrote for them."""
from __future__ import annotations

import functools
import os
import sys
from typing import Any, Mapping, Optional, Tuple, Union

from . import _core

_PACKAGE_DIR = os.path.realpath(os.path.dirname(__file__))


@functools.lru_cache(maxsize=256)
def _in_package(file: str) -> bool:
    return os.path.realpath(os.path.dirname(file)) == _PACKAGE_DIR


def caller() -> Tuple[str, int]:
    """The file and line of the first frame outside tpmlab's modules (and outside contextlib);
    the examples installed under tpmlab/examples are user code."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        inside = _in_package(name) or name.endswith("contextlib.py")
        if not inside:
            return name, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>", 0


def step_name(step: Union[str, Mapping[str, Any]]) -> str:
    """``boot`` for ``"boot"``, ``power_cycle`` for ``{"power_cycle": ...}``."""
    if isinstance(step, Mapping):
        return ", ".join(str(k) for k in step) or "{}"
    return str(step)


def message_without_location(error: BaseException) -> Tuple[str, Optional[int], Optional[int]]:
    """The loader's message without the place it names, and that place's line and column:
    read from the error's fields (``reason``, ``line``, ``column``), never parsed from its text."""
    return (getattr(error, "reason", None) or str(error), getattr(error, "line", None),
            getattr(error, "column", None))


def scenario_error(where: str, reason: str, file: Optional[str], line: Optional[int],
                   column: Optional[int] = None) -> "_core.ScenarioError":
    """A ScenarioError "WHERE: REASON" with the attributes every tpmlab error carries."""
    e = _core.ScenarioError(f"{where}: {reason}")
    e.kind = "bad_input"
    e.layer = "scenario"
    e.rc = None
    e.offset = None
    e.timed_out = False
    e.file = file
    e.line = line
    e.column = column
    e.reason = reason
    return e
