"""run_scenario(..., duts=...): the scenario on many DUTs at once, one
RunResult per DUT in a FleetResult; one DUT that cannot start does not stop
the others."""
import json
import sqlite3

import pytest

import tpmlab


def test_duts_n_runs_every_dut_into_one_database(tmp_path, source_dir):
    fleet = tpmlab.run_scenario(source_dir / "scenarios/power-cycle.yaml", duts=2, cycles=3, out_dir=tmp_path / "f")
    assert isinstance(fleet, tpmlab.FleetResult)
    assert fleet.names == ["dut0", "dut1"] and len(fleet) == 2
    assert [r.status for r in fleet] == ["passed", "passed"] and fleet.status == "passed"
    assert all(len(r.steps) == 5 for r in fleet.results)
    assert fleet.verified_cycles == 6
    assert fleet["dut1"].run_json == (tmp_path / "f/dut1/run.json").resolve()
    rows = sqlite3.connect(tmp_path / "f/tpmlab.db").execute("select id from runs").fetchall()
    assert sorted(r[0] for r in rows) == sorted(r.run_id for r in fleet)
    summary = json.loads(fleet.fleet_json.read_text())
    assert [d["folder"] for d in summary["duts"]] == ["dut0", "dut1"] and summary["status"] == "passed"
    # Two chips, not one: each newly manufactured with its own endorsement key.
    eks = {r.steps[0].snapshot.ek_name for r in fleet}
    assert len(eks) == 2


def test_benches_and_a_dut_that_cannot_start(tmp_path, source_dir):
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"name: lab\ndut: {{transport: device, path: {tmp_path}/no-such-tpmrm9}}\n")
    scenario = tpmlab.Scenario("look", steps=["boot", "snapshot"], platform={"firmware": "baseline"})
    fleet = tpmlab.run_scenario(scenario, duts=[tpmlab.Bench(), tpmlab.Bench(lab), tpmlab.Bench()],
                                out_dir=tmp_path / "f")
    assert fleet.names == ["emulated", "lab", "emulated-2"]
    assert [r.status for r in fleet] == ["passed", "error", "passed"]
    assert fleet.worst is fleet["lab"] and fleet.status == "error"
    assert "no-such-tpmrm9" in fleet["lab"].error and fleet["lab"].steps == []


def test_bad_duts(tmp_path, source_dir):
    scenario = source_dir / "scenarios/power-cycle.yaml"
    with pytest.raises(ValueError, match="at least 1"):
        tpmlab.run_scenario(scenario, duts=0, out_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="duts=\\[Bench"):
        tpmlab.run_scenario(scenario, duts=2, bench=tpmlab.Bench(), out_dir=tmp_path / "b")
    with pytest.raises(TypeError, match="duts"):
        tpmlab.run_scenario(scenario, duts="2", out_dir=tmp_path / "c")


def test_ctrl_c_stops_every_dut_and_raises(tmp_path, source_dir):
    import os
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "f"
    code = ("import tpmlab, sys\n"
            "try:\n"
            f"    tpmlab.run_scenario({str(source_dir / 'scenarios/power-cycle.yaml')!r}, duts=2, cycles=100000,\n"
            f"                        out_dir={str(out)!r})\n"
            "except KeyboardInterrupt:\n"
            "    sys.exit(42)\n")
    child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        started = 0
        while started < 2 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.2)
            try:
                db = sqlite3.connect(f"file:{out / 'tpmlab.db'}?mode=ro", uri=True)
                started = db.execute("select count(distinct run_id) from steps where idx >= 3").fetchone()[0]
                db.close()
            except sqlite3.Error:
                pass
        assert started == 2, "the two DUTs did not both get going"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=120) == 42
    finally:
        if child.poll() is None:
            child.kill()
    summary = json.loads((out / "fleet.json").read_text())
    assert summary["status"] == "interrupted"
    for dut in summary["duts"]:
        run = json.loads((out / dut["folder"] / "run.json").read_text())
        assert run["status"] == "interrupted" and dut["steps"] >= 4, dut
