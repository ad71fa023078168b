"""What tpmlab hands back: step results, snapshots, alarms, drift, event logs.

Every object is built from the harness's own JSON (the same as ``run.json``),
so Python sees exactly what the command line records.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _core

__all__ = [
    "Alarm", "Check", "Clock", "Snapshot", "Drift", "Cause", "EventChange", "StepResult",
    "Expectation", "RunResult", "Event", "EventLog", "diff", "load_run",
]


@dataclass(frozen=True)
class Alarm:
    """One verifier alarm: a stable ``code`` (``AK_UNKNOWN``), its severity, message and evidence."""

    code: str
    severity: str
    message: str
    evidence: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Alarm":
        """An alarm from its run.json form."""
        return cls(j.get("code", ""), j.get("severity", ""), j.get("message", ""),
                   {str(k): str(v) for k, v in (j.get("evidence") or {}).items()})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Check:
    """One TPM 2.0 rule judged at a step (``reset_count``, ``quote_verified``, ...)."""

    name: str
    passed: bool
    detail: str = ""

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Check":
        """A check from its run.json form."""
        return cls(str(j.get("name", "")), bool(j.get("passed", False)), str(j.get("detail", "")))

    def __str__(self) -> str:
        return f"{self.name}: {'passed' if self.passed else 'FAILED'}"


@dataclass(frozen=True)
class Clock:
    """The quoted TPMS_CLOCK_INFO."""

    clock_ms: int
    reset_count: int
    restart_count: int
    safe: bool


@dataclass(frozen=True)
class Cause:
    """Why something drifted: a cause code (``FIRMWARE_BLOB``, ``OWNERSHIP_CLEAR``...), its PCR (-1: none) and detail."""

    code: str
    pcr: int = -1
    detail: str = ""


@dataclass(frozen=True)
class EventChange:
    """One event that differs between two logs: ``change`` is added, removed or changed."""

    change: str
    pcr: int
    type: str
    before: Optional[int]
    after: Optional[int]
    before_summary: str
    after_summary: str


class Drift:
    """What changed between two snapshots and why (``DiffSnapshots``)."""

    def __init__(self, data: Mapping[str, Any]):
        self._data = dict(data)
        #: bank -> PCRs whose values differ (banks without a difference are left out)
        self.pcrs: Dict[str, List[int]] = {k: list(v) for k, v in (data.get("pcrs") or {}).items()}
        #: the events that differ, ordered by PCR
        self.events: List[EventChange] = [EventChange(**e) for e in data.get("events") or []]
        #: each distinct cause once
        self.causes: List[Cause] = [Cause(**c) for c in data.get("causes") or []]

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not self.pcrs and not self.events and not self.causes

    def cause_codes(self) -> List[str]:
        """The cause codes, each once."""
        return [c.code for c in self.causes]

    def as_dict(self) -> Dict[str, Any]:
        """The drift as run.json records it."""
        return dict(self._data)

    def __bool__(self) -> bool:
        return not self.empty

    def __repr__(self) -> str:
        if self.empty:
            return "Drift(none)"
        return f"Drift(pcrs={self.pcrs}, causes={self.cause_codes()}, events={len(self.events)})"


class Snapshot:
    """Everything an attestation verifier looks at, taken after one boot.

    ``pcrs`` is ``{bank: {pcr: bytes}}``; ``clock`` the quoted clock; key names
    are hex TPM2B_NAME contents; ``eventlog`` the raw TCG log (or ``None`` on a
    bare platform).
    """

    def __init__(self, native: "_core.Snapshot"):
        self._native = native
        self._pcrs: Optional[Dict[str, Dict[int, bytes]]] = None
        self._json: Optional[Dict[str, Any]] = None

    @property
    def pcrs(self) -> Dict[str, Dict[int, bytes]]:
        """``{bank: {pcr: bytes}}`` for all 24 PCRs of every allocated bank."""
        if self._pcrs is None:
            self._pcrs = self._native.pcrs
        return self._pcrs

    @property
    def clock(self) -> Clock:
        """The quoted clock: ``clock_ms``, ``reset_count``, ``restart_count``, ``safe``."""
        return Clock(**self._native.clock)

    @property
    def ek_name(self) -> str:
        """The endorsement key's name (hex TPM2B_NAME)."""
        return self._native.ek_name

    @property
    def srk_name(self) -> str:
        """The storage root key's name (hex TPM2B_NAME)."""
        return self._native.srk_name

    @property
    def ak_name(self) -> str:
        """The attestation key's name (hex TPM2B_NAME)."""
        return self._native.ak_name

    @property
    def firmware_version(self) -> int:
        """The TPM's firmware version (TPM_PT_FIRMWARE_VERSION_1 and _2 as one number)."""
        return self._native.firmware_version

    @property
    def taken_at(self) -> str:
        """When the snapshot was taken (UTC, ISO 8601)."""
        return self._native.taken_at

    @property
    def quote_verified(self) -> bool:
        """True when the quote's signature and its PCR digest checked out."""
        return self._native.quote_verified

    @property
    def eventlog(self) -> Optional[bytes]:
        """The raw TCG event log, or None on a bare platform."""
        return self._native.eventlog

    def parsed_eventlog(self) -> Optional["EventLog"]:
        """The event log parsed, or None without one."""
        log = self.eventlog
        return EventLog.parse(log) if log is not None else None

    def to_json(self) -> str:
        """The snapshot as ``run.json`` records it (JSON text)."""
        return self._native.to_json()

    def as_dict(self) -> Dict[str, Any]:
        """The snapshot as run.json records it."""
        if self._json is None:
            self._json = json.loads(self.to_json())
        return dict(self._json)

    def __repr__(self) -> str:
        c = self.clock
        banks = ",".join(self.pcrs)
        return (f"Snapshot(banks=[{banks}], reset_count={c.reset_count}, restart_count={c.restart_count}, "
                f"safe={c.safe}, firmware=0x{self.firmware_version:016x}, ak={self.ak_name[:12]}...)")


#: What :func:`diff` compares: a Snapshot, a StepResult that took one, or ``"RUN.json:STEP"``.
SnapshotSource = Union["Snapshot", "StepResult", str, "os.PathLike[str]"]


def _snapshot_of(source: SnapshotSource) -> "Snapshot":
    if isinstance(source, Snapshot):
        return source
    where = repr(source)
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        loaded = load_run(source)
        if not isinstance(loaded, StepResult):
            raise ValueError(f"{where}: name one step's snapshot as RUN.json:STEP")
        source = loaded
    if isinstance(source, StepResult):
        if source.snapshot is None:
            raise ValueError(f"{where}: step {source.index} ({source.action}) took no snapshot")
        return source.snapshot
    raise TypeError(f"diff compares Snapshots, StepResults or 'RUN.json:STEP', not {type(source).__name__}")


def diff(a: SnapshotSource, b: SnapshotSource) -> Drift:
    """What changed from snapshot ``a`` to ``b``, and the causes (the harness's DiffSnapshots).

    Each side is a :class:`Snapshot`, a :class:`StepResult` that took one, or a
    past run's ``"RUN.json:STEP"`` (as ``tpmlab diff`` takes them)."""
    return Drift(json.loads(_core.diff(_snapshot_of(a)._native, _snapshot_of(b)._native)))


@dataclass(frozen=True)
class Event:
    """One event of a TCG log."""

    index: int
    pcr: int
    type: int
    type_name: str
    digests: Dict[str, bytes]
    data: bytes
    summary: str
    offset: int

    def __repr__(self) -> str:
        return f"Event(#{self.index} pcr={self.pcr} {self.type_name} {self.summary!r})"


class EventLog:
    """A parsed TCG PC Client event log (crypto-agile or SHA1 format)."""

    def __init__(self, native: "_core.EventLog"):
        self._native = native
        self._events: Optional[List[Event]] = None

    @classmethod
    def parse(cls, data: bytes) -> "EventLog":
        """Parses a log; broken framing raises :class:`tpmlab.ParseError` with ``.offset``."""
        return cls(_core.EventLog.parse(bytes(data)))

    @classmethod
    def read(cls, path: "str | Path") -> "EventLog":
        """Reads and parses a log file."""
        return cls.parse(Path(path).read_bytes())

    @property
    def format(self) -> str:
        """``crypto-agile`` or ``sha1``."""
        return self._native.format

    @property
    def events(self) -> List[Event]:
        """The events, in log order."""
        if self._events is None:
            self._events = [Event(**e) for e in self._native.events()]
        return self._events

    def replay(self) -> Dict[str, Dict[int, bytes]]:
        """The PCR values the log claims: ``{bank: {pcr: bytes}}`` for all 24 PCRs."""
        return self._native.replay()

    def to_bytes(self) -> bytes:
        """The log written back out as TCG bytes."""
        return self._native.to_bytes()

    def diff(self, other: "EventLog") -> Drift:
        """Event-by-event differences from this log to ``other`` (pcrs left empty)."""
        return Drift(json.loads(_core.diff_eventlogs(self._native, other._native)))

    def __len__(self) -> int:
        return len(self._native)

    def __repr__(self) -> str:
        return f"EventLog({self.format}, {len(self)} events)"


class StepResult:
    """What one step did: ``status`` (passed, failed, error, refused), checks, alarms, snapshot, drift, detail."""

    def __init__(self, data: Mapping[str, Any], snapshot: Optional["_core.Snapshot"] = None):
        self._data = dict(data)
        self.index: int = int(data.get("index", 0))
        self.action: str = str(data.get("action", ""))
        self.status: str = str(data.get("status", ""))
        self.kind: str = str(data.get("kind", ""))
        self.cycle: Optional[int] = data.get("cycle")
        self.duration_ms: float = float(data.get("duration_ms", 0.0))
        self.error: str = str(data.get("error") or "")
        self.rc: Optional[int] = _response_code(data.get("rc"))
        self.rc_text: str = str(data.get("rc_text") or (data["rc"] if isinstance(data.get("rc"), str) else ""))
        self.checks: List[Check] = [Check.from_json(c) for c in data.get("checks") or []]
        self.alarms: List[Alarm] = [Alarm.from_json(a) for a in data.get("alarms") or []]
        self.not_run: List[str] = list(data.get("not_run") or [])
        self.detail: Dict[str, Any] = dict(data.get("detail") or {})
        self.snapshot: Optional[Snapshot] = Snapshot(snapshot) if snapshot is not None else None
        d = data.get("drift")
        g = data.get("golden_drift")
        #: drift from the previous snapshot (None when there was nothing to compare)
        self.drift: Optional[Drift] = Drift(d) if d else None
        #: drift from the enrolled (golden) snapshot
        self.golden_drift: Optional[Drift] = Drift(g) if g else None

    @property
    def passed(self) -> bool:
        """True when the status is ``passed``."""
        return self.status == "passed"

    @property
    def failed_checks(self) -> List[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    def alarm_codes(self) -> List[str]:
        """Each alarm code raised at this step once, in the order first raised (``alarms`` has every one)."""
        return list(dict.fromkeys(a.code for a in self.alarms))

    def as_dict(self) -> Dict[str, Any]:
        """The step as run.json records it (without its snapshot)."""
        return dict(self._data)

    def __repr__(self) -> str:
        what = self.action + (f" {self.kind}" if self.kind else "")
        extra = ""
        if self.alarms:
            extra += f", alarms={self.alarm_codes()}"
        if self.failed_checks:
            extra += f", failed_checks={[c.name for c in self.failed_checks]}"
        if self.error:
            extra += f", error={self.error!r}"
        if self.rc is not None:
            extra += f", rc={self.rc_text}"
        return f"StepResult(#{self.index} {what}: {self.status}{extra})"


@dataclass(frozen=True)
class Expectation:
    """One judged expectation of a run (an ``expect`` step, or what none covered)."""

    step: int
    where: str
    name: str
    passed: bool
    detail: str


class RunResult:
    """A finished run: status (passed, failed, error, interrupted), steps, expectations, ``run.json``."""

    def __init__(self, summary: Mapping[str, Any], steps: List[StepResult]):
        self.status: str = str(summary.get("status", ""))
        self.run_id: int = int(summary.get("run_id", 0))
        self.seed: int = int(summary.get("seed", 0))
        self.error: str = str(summary.get("error") or "")
        #: the run's run.json; None once the folder it was in was removed (``report()`` still has it)
        self.run_json: Optional[Path] = Path(summary["run_json"]) if summary.get("run_json") else None
        self.expectations: List[Expectation] = [Expectation(**{k: e.get(k) for k in Expectation.__annotations__})
                                                for e in summary.get("expectations") or []]
        self.steps: List[StepResult] = steps
        self._report: Optional[Dict[str, Any]] = None
        self._removed: Optional[Path] = None

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "RunResult":
        """A past run from its ``run.json`` (or the folder holding it), as the same typed objects
        a run returns: steps with their snapshots (event logs read from beside it), expectations."""
        file = Path(path)
        if file.is_dir():
            file = file / "run.json"
        try:
            report = json.loads(file.read_text())
        except OSError as e:
            raise FileNotFoundError(f"{file}: cannot read the run: {e.strerror or e}") from None
        except ValueError as e:
            raise ValueError(f"{file}: not a tpmlab run.json ({e})") from None
        if not isinstance(report, dict) or not isinstance(report.get("steps"), list):
            raise ValueError(f"{file}: not a tpmlab run.json (no steps)")
        steps: List[StepResult] = []
        for data in report["steps"]:
            data = dict(data)
            snapshot = data.pop("snapshot", None)
            native = None
            if snapshot is not None:
                native = _core.Snapshot.from_json(json.dumps(snapshot), file.parent, f"{file}:{data.get('index')}")
            steps.append(StepResult(data, native))
        run = cls({**report, "run_json": str(file.resolve())}, steps)
        run._report = report
        return run

    @property
    def passed(self) -> bool:
        """True when the run's status is ``passed``."""
        return self.status == "passed"

    @property
    def out_dir(self) -> Optional[Path]:
        """The folder of run.json (None once removed)."""
        return self.run_json.parent if self.run_json else None

    def report(self) -> Dict[str, Any]:
        """``run.json`` as a dict. Raises FileNotFoundError when it is gone and was not kept."""
        if self._report is None:
            if self.run_json is None:
                raise FileNotFoundError("this run wrote no run.json" + (f": {self.error}" if self.error else ""))
            try:
                self._report = json.loads(self.run_json.read_text())
            except FileNotFoundError:
                raise FileNotFoundError(f"{self.run_json}: the run's run.json is gone (its folder was removed "
                                        "after the run; give out_dir= to keep it)") from None
        return dict(self._report)

    def _keep_in_memory(self) -> None:
        """Reads run.json now, before its (temporary) folder is removed."""
        if self.run_json is not None and self.run_json.exists():
            self.report()
            self._removed = self.run_json.parent
            self.run_json = None

    @property
    def provenance(self) -> Dict[str, Any]:
        """What ran: scenario, seed, tpmlab version, DUT (with the swtpm version), firmware versions."""
        return dict(self.report().get("provenance") or {})

    def step(self, index: int) -> StepResult:
        """The step numbered ``index`` (as run.json, ``RUN.json:STEP`` and the database number them)."""
        for s in self.steps:
            if s.index == index:
                return s
        raise IndexError(f"no step {index} in this run ({len(self.steps)} steps)")

    def alarms(self) -> List[Alarm]:
        """Every alarm of every step, in order."""
        return [a for s in self.steps for a in s.alarms]

    def __repr__(self) -> str:
        failed = sum(1 for e in self.expectations if not e.passed)
        return (f"RunResult({self.status}, {len(self.steps)} steps, {len(self.expectations)} expectations"
                f"{f' ({failed} failed)' if failed else ''}, "
                f"run_json={str(self.run_json) if self.run_json else None!r})")


def _steps_from_core(items: List[Any]) -> List[StepResult]:
    return [StepResult(json.loads(text), snap) for text, snap in items]


def _response_code(value: Any) -> Optional[int]:
    """A response code as run.json records it: a number, ``"0x120"``, a name with its hex
    (``"TPM_RC_DISABLED (0x120)"``) or an object holding one of those."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        for key in ("code", "value", "hex", "rc"):
            if key in value:
                return _response_code(value[key])
        return None
    text = str(value)
    m = re.search(r"0x[0-9a-fA-F]+", text)
    if m:
        return int(m.group(0), 16)
    return int(text) if text.isdigit() else None


_STEP_REF = re.compile(r"^(.*\.json):(\d+)$")


def load_run(path: Union[str, "os.PathLike[str]"]) -> Union[RunResult, StepResult]:
    """A past run: ``"RUN.json"`` (or its folder) gives its :class:`RunResult`;
    ``"RUN.json:STEP"`` that step's :class:`StepResult` (with its ``snapshot``)."""
    m = _STEP_REF.match(os.fspath(path))
    if m is None:
        return RunResult.load(path)
    run = RunResult.load(m.group(1))
    try:
        return run.step(int(m.group(2)))
    except IndexError:
        raise IndexError(f"{path}: no step {m.group(2)} in {m.group(1)} ({len(run.steps)} steps)") from None
