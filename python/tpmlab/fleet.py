"""Many DUTs at once: one scenario on N emulated chips, or on one DUT per bench.

``tpmlab.run_scenario(source, duts=3)`` (or ``duts=[Bench(...), Bench(...)]``)
runs the scenario on every DUT concurrently, as ``tpmlab run --duts 3`` (or
``--bench A --bench B``) does, and returns a :class:`FleetResult`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Union

from . import _core
from .results import RunResult, _steps_from_core

__all__ = ["FleetResult", "STATUS_SEVERITY"]

#: How bad a run's status is, for :attr:`FleetResult.worst`: a DUT judged and
#: found wanting is worse than a pass, one that could not be judged (error) worse
#: still, and an interrupted fleet (no verdict at all) worst.
STATUS_SEVERITY: Dict[str, int] = {"passed": 0, "failed": 1, "error": 2, "interrupted": 3}


class FleetResult:
    """The runs of one scenario on many DUTs, in DUT order.

    ``results`` holds one :class:`RunResult` per DUT (a DUT that could not
    start is a RunResult with status ``error`` and no steps); ``names`` the
    DUTs' names, which are also their folders under the fleet's ``out_dir``;
    ``worst`` the run with the worst status (passed < failed < error <
    interrupted). Iterating, ``len()`` and ``fleet["dut1"]`` / ``fleet[1]``
    reach the runs.
    """

    def __init__(self, totals: Dict[str, Any], members: List[Any]):
        self.names: List[str] = []
        self.out_dirs: List[Path] = []
        self.results: List[RunResult] = []
        for name, out_dir, summary, steps in members:
            self.names.append(str(name))
            self.out_dirs.append(Path(out_dir))
            self.results.append(RunResult(json.loads(summary), _steps_from_core(steps)))
        #: wall time from the first DUT's start to the last one's end
        self.seconds: float = float(totals["seconds"])
        #: power cycles that passed every check, on all DUTs
        self.verified_cycles: int = int(totals["verified_cycles"])
        #: OUT/fleet.json, the summary tpmlab run --duts writes too (without exit codes)
        self.fleet_json: Path = Path(totals["fleet_json"])

    @property
    def worst(self) -> RunResult:
        """The run with the worst status (the first of equals)."""
        return max(self.results, key=lambda r: STATUS_SEVERITY.get(r.status, 2))

    @property
    def status(self) -> str:
        """The worst status: ``passed`` only when every DUT passed."""
        return self.worst.status

    @property
    def verified_cycles_per_second(self) -> float:
        """All DUTs' verified power cycles per second of the fleet's wall time."""
        return self.verified_cycles / self.seconds if self.seconds > 0 else 0.0

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[RunResult]:
        return iter(self.results)

    def __getitem__(self, key: Union[int, str]) -> RunResult:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no DUT {key!r} in this fleet (DUTs: {', '.join(self.names)})")
            return self.results[self.names.index(key)]
        return self.results[key]

    def __repr__(self) -> str:
        each = ", ".join(f"{n}: {r.status}" for n, r in zip(self.names, self.results))
        return f"FleetResult({self.status}; {each})"


def run_fleet(scenario: "_core.Scenario", out: Path, database: str, seed: Any, keep_state: bool,
              duts: Union[int, Sequence[Any]]) -> FleetResult:
    """``run_scenario(..., duts=...)``'s work: check ``duts``, run, wrap the results."""
    from .dut import Bench
    if isinstance(duts, bool) or not isinstance(duts, (int, list, tuple)):
        raise TypeError(f"duts: a number of emulated DUTs or a list of tpmlab.Bench, not {duts!r}")
    count, files = 0, []
    if isinstance(duts, int):
        if duts < 1:
            raise ValueError(f"duts: at least 1 DUT, not {duts}")
        count = duts
        names = [f"dut{i}" for i in range(count)]
    else:
        if not duts:
            raise ValueError("duts: an empty list of benches")
        benches = [d if isinstance(d, Bench) else Bench(d) for d in duts]
        files = [b.file or "" for b in benches]
        names = []  # the harness makes them unique; only the earlier-run check below needs folders
        for b in benches:
            names.append(b.name)
    if (out / "run.json").exists():
        raise FileExistsError(f"{out} holds a single run ({out / 'run.json'}); a fleet needs a folder of its own")
    if not keep_state:
        for name in names:
            if (out / name / "run.json").exists():
                raise FileExistsError(f"{out / name} already holds a run; tpmlab does not overwrite it: choose "
                                      "another out_dir, or remove that run")
    totals, members = _core.run_fleet(scenario, out, database, seed, keep_state, count=count, benches=files)
    return FleetResult(json.loads(totals), members)
