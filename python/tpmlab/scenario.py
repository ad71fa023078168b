"""Scenarios from Python: the YAML vocabulary as dicts, run by the same runner.

A :class:`Scenario` is written out as YAML (JSON text, which is YAML) and
loaded by the harness's own loader, so a scenario built in Python is checked
exactly as a file is, and errors name the line and column of that text.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _core
from ._caller import caller, message_without_location, scenario_error, step_name
from .fleet import FleetResult, run_fleet
from .results import RunResult, _steps_from_core

__all__ = ["Scenario", "StepSpec", "load_scenario", "run_scenario", "PACKAGE_DIR"]

#: A step as in YAML: a name (``"boot"``) or a one-key dict (``{"power_cycle": "reset"}``).
StepSpec = Union[str, Mapping[str, Any]]

#: Where the package lives; its ``firmware/`` folder holds the firmware models.
PACKAGE_DIR = Path(__file__).resolve().parent


def _model_ref(name_or_path: str) -> str:
    """A model name stays a name (resolved in the package's firmware/); a path becomes absolute."""
    if "/" in name_or_path or name_or_path.endswith(".yaml"):
        return str(Path(name_or_path).expanduser().resolve())
    return name_or_path


class Scenario:
    """A scenario built in Python.

    ``platform`` takes the YAML ``platform`` keys (``banks``, ``ak``,
    ``firmware``, ``command_timeout_ms``, ``images``, ...); ``steps`` is a list
    of steps in the YAML vocabulary (scenarios/README.md)::

        Scenario("soak", steps=["boot", "enroll",
                                {"repeat": {"count": 5, "steps": [{"power_cycle": "reset"}]}}],
                 platform={"firmware": "baseline"})
    """

    def __init__(self, name: str, steps: Sequence[StepSpec] = (), *, platform: Optional[Mapping[str, Any]] = None,
                 seed: int = 1, description: str = "", unexpected_alarms: str = "report"):
        self.name = name
        self.steps: List[StepSpec] = list(steps)
        self.platform: Dict[str, Any] = dict(platform or {})
        self.seed = seed
        self.description = description
        self.unexpected_alarms = unexpected_alarms
        # Where the user's code built it: what its errors and results name.
        self.defined_at: Tuple[str, int] = caller()

    def as_dict(self) -> Dict[str, Any]:
        """The scenario as the YAML keys (firmware model paths made absolute)."""
        platform = dict(self.platform)
        if isinstance(platform.get("firmware"), str):
            platform["firmware"] = _model_ref(platform["firmware"])
        d: Dict[str, Any] = {"name": self.name, "seed": self.seed, "platform": platform,
                             "unexpected_alarms": self.unexpected_alarms, "steps": list(self.steps)}
        if self.description:
            d["description"] = self.description
        return d

    def to_yaml(self) -> str:
        """The scenario as YAML text (JSON, one key per line, so errors point at a line)."""
        return json.dumps(self.as_dict(), indent=1)

    def load(self) -> "_core.Scenario":
        """Checks and loads it. A mistake raises :class:`tpmlab.ScenarioError` at the file:line
        that built this Scenario, naming the step (``steps[2] (power_cycle)``) or platform key."""
        text = self.to_yaml()
        file, line = self.defined_at
        try:
            # The file name only places the firmware models it names (the package's firmware/).
            loaded = _core.load_scenario_text(text, str(PACKAGE_DIR / f"{self.name}.py-scenario.yaml"))
        except _core.ScenarioError as e:
            message, text_line, _ = message_without_location(e)
            part = self._part_at(text, text_line)
            raise scenario_error(f"{file}:{line}", f"scenario {self.name!r}, {part}: {message}", file, line) from None
        for i in range(loaded.top_level_steps):
            loaded.relocate_step(i, f"{file}:{line} steps[{i}]")
        return loaded

    def _part_at(self, text: str, line: Optional[int]) -> str:
        """What line ``line`` of :meth:`to_yaml`'s text belongs to: ``steps[2] (power_cycle)`` or a top-level key."""
        if line is None:
            return "scenario"
        lines = text.splitlines()
        step = -1
        in_steps = False
        key = "scenario"
        for number, content in enumerate(lines[:line], start=1):
            indent = len(content) - len(content.lstrip(" "))
            if indent == 1 and content.lstrip().startswith('"'):
                key = content.split('"')[1]
                in_steps = key == "steps"
                step = -1
            elif in_steps and indent == 2 and not content.lstrip().startswith(("}", "]")):
                step += 1  # json.dumps(indent=1) starts each list item at two spaces
        if key == "steps" and 0 <= step < len(self.steps):
            return f"steps[{step}] ({step_name(self.steps[step])})"
        return key

    def __repr__(self) -> str:
        return f"Scenario({self.name!r}, {len(self.steps)} steps, platform={self.platform})"


def load_scenario(source: Union[str, os.PathLike, Scenario], *, text: bool = False) -> "_core.Scenario":
    """Loads a scenario file (or YAML text with ``text=True``, or a :class:`Scenario`)."""
    if isinstance(source, Scenario):
        return source.load()
    if text:
        try:
            # The file name only places the firmware models it names (the package's firmware/).
            return _core.load_scenario_text(str(source), str(PACKAGE_DIR / "text.yaml"))
        except _core.ScenarioError as e:
            message, line, column = message_without_location(e)
            where = "<scenario text>" + (f":{line}:{column}" if line is not None else "")
            file, called = caller()
            raise scenario_error(where, f"{message} (the text given at {file}:{called})", "<scenario text>",
                                 line, column) from None
    return _core.load_scenario_file(Path(source))


def refuse_earlier_run(out: Path, keep_state: bool = False) -> None:
    """Raises FileExistsError when ``out`` already holds a finished run, as
    ``tpmlab run`` refuses one: a run never silently replaces another's
    run.json. ``keep_state`` continues that chip, so it is let through."""
    if not keep_state and (out / "run.json").exists():
        raise FileExistsError(f"{out} already holds a run ({out / 'run.json'}); tpmlab does not overwrite it: "
                              "choose another out_dir, or remove that run")


def default_out_dir(name: str) -> Path:
    """``tpmlab-runs/NAME-TIME``, as the command line picks it."""
    return Path("tpmlab-runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_scenario(source: Union[str, os.PathLike, Scenario], *, out_dir: Union[str, os.PathLike, None] = None,
                 database: Union[str, os.PathLike, None] = None, seed: Optional[int] = None,
                 cycles: Optional[int] = None, keep_state: bool = False, bench: Any = None,
                 duts: Union[int, Sequence[Any], None] = None) -> Union[RunResult, FleetResult]:
    """Runs a scenario file or a :class:`Scenario` on a new emulated TPM (or ``bench``'s, a
    :class:`tpmlab.Bench`), as ``tpmlab run [--bench FILE]`` does.

    Results go to ``out_dir`` (``run.json``, ``junit.xml``) and to the SQLite
    ``database`` (default ``OUT/tpmlab.db``; point several runs, CLI or Python,
    at one file to collect them). A run that cannot start raises; a run that
    starts returns its :class:`RunResult`, failed or not.

    ``duts`` runs the scenario on many DUTs at once, as ``tpmlab run --duts N``
    (or several ``--bench``) does: a number of emulated chips, or a list of
    :class:`tpmlab.Bench` (one DUT each). Each DUT gets its own folder under
    ``out_dir`` (``dut0``..., or the bench's name), all share ``database``;
    the call returns a :class:`tpmlab.FleetResult` (``.results``, one
    :class:`RunResult` per DUT, and ``.worst``) once every DUT has ended. A
    DUT that cannot start is a result with status ``error``, not an exception.
    """
    scenario = load_scenario(source)
    if cycles is not None:
        scenario.override_cycles(cycles)
    out = Path(out_dir) if out_dir is not None else default_out_dir(scenario.name)
    if duts is not None:
        if bench is not None:
            raise ValueError("bench= and duts=: give every bench in duts=[Bench, ...] instead")
        return run_fleet(scenario, out.resolve(), str(Path(database).resolve()) if database else "", seed,
                         keep_state, duts)
    refuse_earlier_run(out.resolve(), keep_state)
    summary, steps = _core.run_scenario(scenario, out.resolve(), str(Path(database).resolve()) if database else "",
                                        seed, keep_state,
                                        bench=bench.file if bench is not None and bench.file else "")
    return RunResult(json.loads(summary), _steps_from_core(steps))
