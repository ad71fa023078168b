"""What tpmlab hands back: step results, snapshots, alarms, drift, event logs.

Every object is built from the harness's own JSON (the same as ``run.json``),
so Python sees exactly what the command line records.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from . import _core

__all__ = [
    "Alarm", "Check", "Clock", "Snapshot", "Drift", "Cause", "EventChange", "StepResult",
    "Expectation", "RunResult", "Event", "EventLog", "diff",
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
        return not self.pcrs and not self.events and not self.causes

    def cause_codes(self) -> List[str]:
        return [c.code for c in self.causes]

    def as_dict(self) -> Dict[str, Any]:
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
        if self._pcrs is None:
            self._pcrs = self._native.pcrs
        return self._pcrs

    @property
    def clock(self) -> Clock:
        return Clock(**self._native.clock)

    @property
    def ek_name(self) -> str:
        return self._native.ek_name

    @property
    def srk_name(self) -> str:
        return self._native.srk_name

    @property
    def ak_name(self) -> str:
        return self._native.ak_name

    @property
    def firmware_version(self) -> int:
        return self._native.firmware_version

    @property
    def taken_at(self) -> str:
        return self._native.taken_at

    @property
    def quote_verified(self) -> bool:
        return self._native.quote_verified

    @property
    def eventlog(self) -> Optional[bytes]:
        return self._native.eventlog

    def parsed_eventlog(self) -> Optional["EventLog"]:
        """The event log parsed, or None without one."""
        log = self.eventlog
        return EventLog.parse(log) if log is not None else None

    def to_json(self) -> str:
        """The snapshot as ``run.json`` records it (JSON text)."""
        return self._native.to_json()

    def as_dict(self) -> Dict[str, Any]:
        if self._json is None:
            self._json = json.loads(self.to_json())
        return dict(self._json)

    def __repr__(self) -> str:
        c = self.clock
        banks = ",".join(self.pcrs)
        return (f"Snapshot(banks=[{banks}], reset_count={c.reset_count}, restart_count={c.restart_count}, "
                f"safe={c.safe}, firmware=0x{self.firmware_version:016x}, ak={self.ak_name[:12]}...)")


def diff(a: Snapshot, b: Snapshot) -> Drift:
    """What changed from snapshot ``a`` to ``b``, and the causes (the harness's DiffSnapshots)."""
    return Drift(json.loads(_core.diff(a._native, b._native)))


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
        return cls.parse(Path(path).read_bytes())

    @property
    def format(self) -> str:
        return self._native.format

    @property
    def events(self) -> List[Event]:
        if self._events is None:
            self._events = [Event(**e) for e in self._native.events()]
        return self._events

    def replay(self) -> Dict[str, Dict[int, bytes]]:
        """The PCR values the log claims: ``{bank: {pcr: bytes}}`` for all 24 PCRs."""
        return self._native.replay()

    def to_bytes(self) -> bytes:
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
        self.rc: Optional[int] = data.get("rc")
        self.rc_text: str = str(data.get("rc_text", ""))
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
        return self.status == "passed"

    @property
    def failed_checks(self) -> List[Check]:
        return [c for c in self.checks if not c.passed]

    def alarm_codes(self) -> List[str]:
        return [a.code for a in self.alarms]

    def as_dict(self) -> Dict[str, Any]:
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
        self.run_json: Optional[Path] = Path(summary["run_json"]) if summary.get("run_json") else None
        self.expectations: List[Expectation] = [Expectation(**e) for e in summary.get("expectations") or []]
        self.steps: List[StepResult] = steps

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def out_dir(self) -> Optional[Path]:
        return self.run_json.parent if self.run_json else None

    def report(self) -> Dict[str, Any]:
        """``run.json`` as a dict."""
        if self.run_json is None or not self.run_json.exists():
            return {}
        return json.loads(self.run_json.read_text())

    @property
    def provenance(self) -> Dict[str, Any]:
        """What ran: scenario, seed, tpmlab version, DUT (with the swtpm version), firmware versions."""
        return dict(self.report().get("provenance") or {})

    def alarms(self) -> List[Alarm]:
        return [a for s in self.steps for a in s.alarms]

    def __repr__(self) -> str:
        failed = sum(1 for e in self.expectations if not e.passed)
        return (f"RunResult({self.status}, {len(self.steps)} steps, {len(self.expectations)} expectations"
                f"{f' ({failed} failed)' if failed else ''}, run_json={str(self.run_json)!r})")


def _steps_from_core(items: List[Any]) -> List[StepResult]:
    return [StepResult(json.loads(text), snap) for text, snap in items]
