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
from . import _core
from .dut import POWER_CYCLE_KINDS, Bench, Dut, emulated, open_emulated
from .errors import (EmulatorError, MissingDependencyError, ParseError, ScenarioError, StoreError, TpmError,
                     TpmlabError, TransportError)
from .results import (Alarm, Cause, Check, Clock, Drift, Event, EventChange, EventLog, Expectation, RunResult,
                      Snapshot, StepResult, diff)
from .scenario import Scenario, load_scenario, run_scenario

__version__: str = _core.version

__all__ = [
    "Alarm", "Bench", "Cause", "Check", "Clock", "Drift", "Dut", "EmulatorError", "Event", "EventChange",
    "EventLog", "Expectation", "MissingDependencyError", "POWER_CYCLE_KINDS", "ParseError", "RunResult",
    "Scenario", "ScenarioError", "Snapshot", "StepResult", "StoreError", "TpmError", "TpmlabError",
    "TransportError", "diff", "emulated", "load_scenario", "open_emulated", "run_scenario", "__version__",
]
