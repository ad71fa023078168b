"""tpmlab: a hardware-in-the-loop test harness for TPM 2.0, from Python.

::

    import tpmlab
    with tpmlab.emulated(firmware="baseline") as dut:
        dut.boot()
        dut.enroll()
        step = dut.power_cycle("power-loss")
        print(step.status, step.alarms, step.snapshot.clock)

The pytest plugin (``-p tpmlab.pytest_plugin``) gives tests a booted ``tpm``.
"""
try:
    from . import _core
except ImportError as _error:  # built for another interpreter: say which, and how to run it
    import pathlib as _pathlib
    import sys as _sys
    _built = sorted(p.name for p in _pathlib.Path(__file__).resolve().parent.glob("_core*.so"))
    raise ImportError(
        f"tpmlab's extension (tpmlab/_core) does not load into {_sys.executable} "
        f"(Python {_sys.version_info.major}.{_sys.version_info.minor}): {_error}. "
        f"Built: {', '.join(_built) or 'none found'}. Use the interpreter it was built for "
        "(Debian's /usr/bin/python3; for tests `/usr/bin/python3 -m pytest -p tpmlab.pytest_plugin`), or build "
        "for this one with cmake -DPython_EXECUTABLE=" + _sys.executable + " (python/README.md)") from _error
from .dut import POWER_CYCLE_KINDS, Bench, Dut, emulated, open_emulated
from .errors import (EmulatorError, ExpectationFailed, MissingDependencyError, ParseError, ScenarioError,
                     StoreError, TpmError, TpmlabError, TransportError)
from .results import (Alarm, Cause, Check, Clock, Drift, Event, EventChange, EventLog, Expectation, RunResult,
                      Snapshot, StepResult, diff, load_run)
from .fleet import FleetResult
from .scenario import Scenario, load_scenario, run_scenario

__version__: str = _core.version

__all__ = [
    "Alarm", "Bench", "Cause", "Check", "Clock", "Drift", "Dut", "EmulatorError", "Event", "EventChange",
    "EventLog", "Expectation", "ExpectationFailed", "FleetResult", "MissingDependencyError", "POWER_CYCLE_KINDS", "ParseError",
    "RunResult", "Scenario", "ScenarioError", "Snapshot", "StepResult", "StoreError", "TpmError", "TpmlabError",
    "TransportError", "diff", "emulated", "load_run", "load_scenario", "open_emulated", "run_scenario", "__version__",
]
