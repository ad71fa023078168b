"""A DUT driven from Python, one step at a time.

Each method runs one step of the scenario language through the harness's
Session (the same checks, alarms, store rows, ``run.json`` and ``junit.xml``
as a scenario file) and returns its :class:`~tpmlab.StepResult`. A step that
fails is a result with status ``error``, not an exception; a DUT that cannot
be launched raises.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from . import _core
from ._caller import caller, message_without_location, scenario_error, step_name
from .errors import ExpectationFailed, TpmlabError
from .results import Expectation, RunResult, Snapshot, StepResult, _steps_from_core
from .scenario import PACKAGE_DIR, Scenario, StepSpec, _model_ref, refuse_earlier_run

__all__ = ["Dut", "emulated", "Bench", "POWER_CYCLE_KINDS"]

POWER_CYCLE_KINDS = ("reset", "restart", "resume", "power-loss", "hard-loss")


class Dut:
    """One TPM under test. Get one from :func:`tpmlab.emulated` (or the pytest ``tpm`` fixture)."""

    def __init__(self, session: "_core.Session", scenario: Scenario, out_dir: Path):
        self._session = session
        self._scenario = scenario
        self._checkpoints: List[str] = []
        self._result: Optional[RunResult] = None
        # (judged step, where) of every failed expectation already raised as ExpectationFailed
        self._raised_expectations: Set[Tuple[int, str]] = set()
        #: the run's folder (run.json, junit.xml, the chip's state); None once
        #: :func:`tpmlab.emulated` has removed its temporary folder
        self.out_dir: Optional[Path] = out_dir
        #: every step result so far, in order
        self.steps: List[StepResult] = []
        #: the latest snapshot taken
        self.last_snapshot: Optional[Snapshot] = None

    # -- running steps -----------------------------------------------------

    def run(self, step: StepSpec) -> List[StepResult]:
        """Runs any step of the scenario language (``repeat`` and ``choose`` too); returns every result it made.

        A step that does not load raises :class:`tpmlab.ScenarioError` naming the
        step and the file:line of the Python code that called it; run.json and
        expectations name the step by that file:line too."""
        file, line = caller()
        where = f"{file}:{line}"
        # Earlier checkpoints are declared again so a rollback to them loads.
        steps: List[StepSpec] = [{"checkpoint": n} for n in self._checkpoints]
        steps.append(step)
        text = json.dumps({"name": self._scenario.name, "steps": steps}, indent=1)
        try:
            # The file name only places the firmware models a step names (the package's firmware/).
            loaded = _core.load_scenario_text(text, str(PACKAGE_DIR / f"{self._scenario.name}.py-step.yaml"))
        except _core.ScenarioError as e:
            message, _, _ = message_without_location(e)
            raise scenario_error(where, f"{step_name(step)}: {message}", file, line) from None
        loaded.relocate_step(loaded.top_level_steps - 1, where)
        if isinstance(step, Mapping) and "checkpoint" in step:
            self._checkpoints.append(str(step["checkpoint"]))
        results = _steps_from_core(self._session.execute(loaded, loaded.top_level_steps - 1))
        if not results and self._session.ended:
            raise TpmlabError("the run has ended (too many step errors in a row); open a new DUT")
        for r in results:
            if r.snapshot is not None:
                self.last_snapshot = r.snapshot
        self.steps.extend(results)
        return results

    def step(self, step: StepSpec) -> StepResult:
        """Runs one step and returns its result (the last, for a ``repeat``)."""
        return self.run(step)[-1]

    def boot(self, snapshot: bool = True) -> StepResult:
        """_TPM_Init, Startup(CLEAR), the firmware model's measurements, and a snapshot."""
        return self.step({"boot": {"snapshot": snapshot}})

    def power_cycle(self, kind: Optional[str] = None, snapshot: bool = True,
                    mix: Optional[Mapping[str, float]] = None) -> StepResult:
        """A power cycle: ``reset`` (the default), ``restart``, ``resume``, ``power-loss`` or ``hard-loss``,
        or one drawn with the seed from ``mix`` (``{"resume": 1, "power-loss": 2}``); ``kind`` and
        ``mix`` together raise :class:`tpmlab.ScenarioError`, as in YAML."""
        body: Dict[str, Any] = {"snapshot": snapshot}
        if kind is not None or mix is None:
            body["kind"] = (kind or "reset").replace("_", "-")
        if mix is not None:
            body["mix"] = {k.replace("_", "-"): v for k, v in mix.items()}
        return self.step({"power_cycle": body})

    def snapshot(self) -> Snapshot:
        """Takes a snapshot, judges it, and returns it (the step's result is in ``steps[-1]``)."""
        r = self.step("snapshot")
        if r.snapshot is None:
            raise TpmlabError(f"no snapshot: {r.error or r.status}")
        return r.snapshot

    def verify(self) -> StepResult:
        """Takes a snapshot and judges it: the result's ``alarms`` are the verdict."""
        return self.step("verify")

    def enroll(self) -> StepResult:
        """Makes the latest snapshot the enrollment and golden reference."""
        return self.step("enroll")

    def expect(self, **expectation: Any) -> StepResult:
        """Judges the step before (``alarms=[...]``, ``absent=[...]``, ``rc=...``; scenarios/README.md).

        An expectation that is not met raises :class:`tpmlab.ExpectationFailed`
        (an ``AssertionError``, so it fails a pytest test) saying what was not
        met; it is also a failed expectation of the run. To look at a failed
        expectation without raising, run it as a step: ``dut.step({"expect": {...}})``."""
        r = self.step({"expect": expectation})
        if r.status == "passed":
            return r
        judged = int(r.detail.get("judged_step", -1))
        judged_action = next((s.action + (f" {s.kind}" if s.kind else "") for s in self.steps
                              if s.index == judged and s.action != "expect"), "no step")
        file, line = caller()
        where = f"{file}:{line}"
        self._raised_expectations.add((judged, where))
        unmet = "; ".join(f"{c.name}: {c.detail}" for c in r.failed_checks) or r.error or r.status
        raise ExpectationFailed(f"{where}: expect on step {judged} ({judged_action}) not met: {unmet}",
                                r, judged, where)

    def clear(self, auth: str = "lockout") -> StepResult:
        """TPM2_Clear authorised by ``lockout`` or ``platform``."""
        return self.step({"clear": {"auth": auth}})

    def clear_control(self, disable: bool = True, auth: str = "platform") -> StepResult:
        """TPM2_ClearControl: disable (or enable) TPM2_Clear."""
        return self.step({"clear_control": {"disable": disable, "auth": auth}})

    def change_eps(self) -> StepResult:
        """TPM2_ChangeEPS: a new endorsement seed (a board swap)."""
        return self.step("change_eps")

    def change_pps(self) -> StepResult:
        """TPM2_ChangePPS: a new platform seed."""
        return self.step("change_pps")

    def hierarchy(self, name: str, enable: bool) -> StepResult:
        """TPM2_HierarchyControl on ``owner``, ``endorsement`` or ``platform``."""
        return self.step({"hierarchy": {name: "enable" if enable else "disable"}})

    def allocate_banks(self, banks: Sequence[str]) -> StepResult:
        """TPM2_PCR_Allocate: these banks from the next TPM reset on."""
        return self.step({"allocate_banks": list(banks)})

    def firmware_update(self, platform: Optional[str] = None, tpm: Optional[str] = None) -> StepResult:
        """A platform firmware update (``platform=`` a model name or path) or a TPM one (``tpm=`` an image name)."""
        if (platform is None) == (tpm is None):
            raise ValueError("firmware_update takes platform= or tpm=, one of them")
        if platform is not None:
            return self.step({"firmware_update": {"platform": _model_ref(platform)}})
        return self.step({"firmware_update": {"tpm": tpm}})

    def extend(self, pcr: int, data: Union[str, bytes], logged: bool = False, type: int = 13) -> StepResult:
        """Extends ``pcr`` with H(data) in every bank; ``logged=True`` also appends it to the event log."""
        if isinstance(data, bytes):
            data = data.decode("latin-1")
        return self.step({"extend": {"pcr": pcr, "data": data, "logged": logged, "type": type}})

    def fault(self, kind: str, **options: Any) -> StepResult:
        """Injects a fault: ``latency``, ``drop``, ``corrupt``, ``response_code``, ``disconnect``, ``kill``,
        ``cut_power``, ``hang``, ``unhang``, ``clear`` with the scenario language's options."""
        return self.step({"fault": {"kind": kind, **options}})

    def clock_set(self, ms: int) -> StepResult:
        """TPM2_ClockSet (owner auth): sets the TPM clock to ``ms``. It only goes forward: an earlier
        value is refused (status ``refused``, ``TPM_RC_VALUE``). ``detail`` has ``clock_before_ms``."""
        return self.step({"clock_set": ms})

    def clock_skew(self, ms: int) -> StepResult:
        """Sets the TPM clock ``ms`` ahead; the next quote raises CLOCK_SKEW."""
        return self.step({"clock_skew": ms})

    def wait(self, ms: int) -> StepResult:
        """Sleeps ``ms`` milliseconds (0..86400000) with the TPM powered, so its clock runs on
        (e.g. to let libtpms save the clock to NV, every 4096 ms)."""
        return self.step({"wait": ms})

    def checkpoint(self, name: str) -> StepResult:
        """Saves the chip's NV state under ``name`` (a vTPM snapshot)."""
        return self.step({"checkpoint": name})

    def rollback(self, name: str, snapshot: bool = True) -> StepResult:
        """Reverts the chip to a checkpoint (after a power loss)."""
        return self.step({"rollback": {"to": name, "snapshot": snapshot}})

    def doctor(self) -> Dict[str, Any]:
        """The troubleshooting checklist: ``{"status", "items": [...]}`` plus the step result under ``"step"``."""
        r = self.step("doctor")
        return {"status": r.status, "items": r.detail.get("doctor"), "step": r}

    # -- ending ------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once the run has ended (finished, or stopped after too many step errors in a row)."""
        return self._session.ended

    def finish(self) -> RunResult:
        """Ends the run (judges it, writes run.json and junit.xml) and stops the emulator."""
        if self._result is None:
            summary = json.loads(self._session.close())
            self._result = RunResult(summary, list(self.steps))
        return self._result

    @property
    def result(self) -> Optional[RunResult]:
        """The :class:`RunResult` once :meth:`finish` has run, else None."""
        return self._result

    def _unraised_failures(self) -> List[Expectation]:
        """The run's failed expectations that no :class:`ExpectationFailed` reported (the pytest fixture's verdict)."""
        if self._result is None:
            return []
        return [e for e in self._result.expectations
                if not e.passed and (e.step, e.where) not in self._raised_expectations]

    def __repr__(self) -> str:
        state = "finished" if self._result is not None else ("ended" if self.ended else "open")
        return f"Dut({self._scenario.name!r}, {state}, {len(self.steps)} steps, out_dir={str(self.out_dir)!r})"


def open_emulated(*, firmware: Optional[str] = "baseline", banks: Optional[Sequence[str]] = None, ak: str = "rsa",
                  seed: int = 1, out_dir: Union[str, Path], database: Union[str, Path, None] = None,
                  command_timeout_ms: Optional[int] = None, images: Optional[Mapping[str, Any]] = None,
                  name: str = "python", unexpected_alarms: str = "report",
                  platform: Optional[Mapping[str, Any]] = None, bench: Optional["Bench"] = None) -> Dut:
    """Launches a fresh swtpm (or opens ``bench``'s chip) and opens a run on it; call :meth:`Dut.finish` when done."""
    p: Dict[str, Any] = dict(platform or {})
    if firmware is not None:
        p["firmware"] = firmware
    if banks is not None:
        p["banks"] = list(banks)
    p.setdefault("ak", ak)
    if command_timeout_ms is not None:
        p["command_timeout_ms"] = command_timeout_ms
    if images:
        p["images"] = dict(images)
    scenario = Scenario(name, steps=["snapshot"], platform=p, seed=seed, unexpected_alarms=unexpected_alarms)
    out = Path(out_dir).resolve()
    refuse_earlier_run(out)
    session = _core.Session.open(scenario.load(), out, str(Path(database).resolve()) if database else "",
                                 bench=bench.file if bench is not None and bench.file else "")
    return Dut(session, scenario, out)


@contextlib.contextmanager
def emulated(firmware: Optional[str] = "baseline", banks: Optional[Sequence[str]] = None, ak: str = "rsa",
             seed: int = 1, out_dir: Union[str, Path, None] = None, command_timeout_ms: Optional[int] = None,
             *, database: Union[str, Path, None] = None, images: Optional[Mapping[str, Any]] = None,
             name: str = "python", unexpected_alarms: str = "report",
             platform: Optional[Mapping[str, Any]] = None, bench: Optional["Bench"] = None) -> Iterator[Dut]:
    """A fresh emulated TPM (swtpm) for the ``with`` block; not yet booted.

    ``firmware`` is a firmware model name (``baseline``, ``firmware-blob``, ...)
    or a path, or ``None`` for a bare platform. On exit the run is finished
    (run.json, junit.xml), swtpm is stopped, and the temporary folder removed
    unless ``out_dir`` was given: then ``dut.result.run_json`` is None and
    ``report()`` and ``provenance`` return what run.json held (read before
    the folder went). ``database`` collects the rows elsewhere
    (the same SQLite store the command line writes). ``bench`` (a
    :class:`Bench`; prefer ``bench.open()``) puts the DUT on that bench's chip::

        with tpmlab.emulated() as dut:
            dut.boot()
            print(dut.power_cycle("resume").snapshot.clock)
    """
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="tpmlab-")
        out_dir = tmp
    try:
        dut = open_emulated(firmware=firmware, banks=banks, ak=ak, seed=seed, out_dir=out_dir, database=database,
                            command_timeout_ms=command_timeout_ms, images=images, name=name,
                            unexpected_alarms=unexpected_alarms, platform=platform, bench=bench)
        try:
            yield dut
        finally:
            result = dut.finish()
            if tmp is not None:
                # The folder goes: what it held stays readable from the result.
                result._keep_in_memory()
                dut.out_dir = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class Bench:
    """A bench: the TPM a DUT is, how its bytes travel, its power switch and what it may undergo.

    ``Bench()`` (or ``Bench("emulated")``) is the embedded default; ``Bench(FILE)``
    loads a bench file (``hw/README.md``; errors raise :class:`ScenarioError` at
    file:line:column). :meth:`open` gives a :class:`Dut` on it, :meth:`run` runs a
    scenario on it, :meth:`check` looks for its parts on this machine::

        bench = tpmlab.Bench("hw/benches/simulated-spi.yaml")
        with bench.open() as dut:
            dut.boot()

    On a real chip, clear, ChangeEPS/PPS, bank allocation and firmware installs
    are refused unless the file's ``allow:`` permits them.
    """

    def __init__(self, source: Union[str, Path] = "emulated", **options: Any):
        #: keyword arguments every :meth:`open` gets (``firmware``, ``banks``, ...)
        self.options = options
        if str(source) == "emulated":
            self.file: Optional[str] = None
            every = json.loads(_core.load_bench_text("name: emulated\ndut: {transport: emulated}\n", "emulated"))
            self.summary: Dict[str, Any] = every
        else:
            self.file = str(Path(source).resolve())
            self.summary = json.loads(_core.load_bench(self.file))

    @classmethod
    def load(cls, source: Union[str, Path]) -> "Bench":
        """``emulated`` or a bench file."""
        return cls(source)

    @property
    def name(self) -> str:
        """The bench's name (its file's ``name:``)."""
        return str(self.summary["name"])

    @property
    def emulated(self) -> bool:
        """True for swtpm (also behind the simulated SPI TPM): anything is allowed."""
        return bool(self.summary["emulated"])

    @property
    def transport(self) -> str:
        """How bytes reach the TPM (``emulated``, ``device``, ``tis-spi-sim``, ...)."""
        return str(self.summary["dut"]["transport"])

    @property
    def allow(self) -> Dict[str, bool]:
        """The destructive operations the bench permits (all, on an emulated one)."""
        return dict(self.summary["allow"])

    def check(self) -> List[Tuple[str, str, str]]:
        """Looks for each part on this machine without touching the TPM: ``[(part, state, detail)]``,
        state ``present`` or ``missing``."""
        if self.file is None:
            return [("dut", "present" if shutil.which("swtpm") else "missing", "swtpm (the embedded default)")]
        return [tuple(item) for item in _core.check_bench(self.file)]  # type: ignore[misc]

    def missing(self) -> List[str]:
        """``"part: detail"`` for every part :meth:`check` did not find; empty when the bench is complete."""
        return [f"{part}: {detail}" for part, state, detail in self.check() if state != "present"]

    def open(self, **overrides: Any) -> "contextlib.AbstractContextManager[Dut]":
        """A DUT on this bench for a ``with`` block (the keywords of :func:`tpmlab.emulated`)."""
        return emulated(**{**self.options, **overrides, "bench": self})

    def run(self, source: Any, **kwargs: Any) -> RunResult:
        """Runs a scenario file or :class:`Scenario` on this bench (see :func:`tpmlab.run_scenario`)."""
        from .scenario import run_scenario
        return run_scenario(source, bench=self, **kwargs)

    def __repr__(self) -> str:
        where = f", {self.file!r}" if self.file else ""
        return f"Bench({self.name!r}{where}: {self.transport}, power {self.summary['power']['kind']})"
