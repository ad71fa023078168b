"""The API mirrors the harness: snapshots, event logs, drift, scenarios, one store."""
import sqlite3

import pytest

import tpmlab


@pytest.fixture(scope="module")
def booted():
    with tpmlab.emulated(firmware="baseline") as dut:
        first = dut.boot()
        dut.enroll()
        yield dut, first


def test_snapshot_fields(booted):
    _, first = booted
    snap = first.snapshot
    assert set(snap.pcrs) == {"sha1", "sha256"}
    assert sorted(snap.pcrs["sha256"]) == list(range(24))
    assert all(isinstance(v, bytes) and len(v) == 32 for v in snap.pcrs["sha256"].values())
    assert snap.clock.safe and snap.clock.restart_count == 0
    assert snap.ek_name and snap.ak_name and snap.firmware_version > 0
    assert snap.quote_verified
    assert snap.as_dict()["ek_name"] == snap.ek_name
    assert "Snapshot(" in repr(snap) and "reset_count" in repr(snap)


def test_eventlog_parse_and_replay_match_the_tpm(booted):
    _, first = booted
    snap = first.snapshot
    log = tpmlab.EventLog.parse(snap.eventlog)
    assert len(log) > 5 and log.format == "crypto-agile"
    assert any(e.type_name == "EV_SEPARATOR" for e in log.events)
    replay = log.replay()
    for pcr in range(8):
        assert replay["sha256"][pcr] == snap.pcrs["sha256"][pcr]
    assert tpmlab.EventLog.parse(log.to_bytes()).to_bytes() == log.to_bytes()
    assert log.diff(log).empty


def test_power_cycle_and_drift(booted):
    dut, first = booted
    step = dut.power_cycle("power-loss")
    assert step.status == "passed" and step.kind == "power-loss"
    assert "CLOCK_NOT_SAFE" in step.alarm_codes()
    alarm = step.alarms[0]
    assert alarm.code and alarm.severity and alarm.message and isinstance(alarm.evidence, dict)
    drift = tpmlab.diff(first.snapshot, step.snapshot)
    assert "POWER_LOSS" in drift.cause_codes() and not drift.pcrs
    assert "power_cycle power-loss: passed" in repr(step)


def test_refusal_is_a_result(booted):
    dut, _ = booted
    dut.clear_control(disable=True)
    refused = dut.clear()
    assert refused.status == "refused" and refused.rc == 0x120, refused
    assert dut.expect(rc="TPM_RC_DISABLED").passed
    dut.clear_control(disable=False)


def test_run_scenario_file_and_python_scenario_share_a_store(source_dir, tmp_path):
    db = tmp_path / "runs.db"
    r1 = tpmlab.run_scenario(source_dir / "scenarios" / "power-cycle.yaml", out_dir=tmp_path / "a", database=db,
                             cycles=3)
    assert r1.status == "passed", r1
    assert len(r1.steps) == 5 and r1.run_json.exists()
    assert r1.provenance["tpmlab_version"] == tpmlab.__version__

    scenario = tpmlab.Scenario("py-built", platform={"firmware": "baseline"}, steps=[
        "boot", "enroll", {"firmware_update": {"platform": "firmware-blob"}}, {"power_cycle": "reset"},
        {"expect": {"alarms": ["PCR_POLICY_MISMATCH"], "pcrs": {"drift": [0], "against": "golden"}}},
    ], unexpected_alarms="fail")
    r2 = tpmlab.run_scenario(scenario, out_dir=tmp_path / "b", database=db)
    assert r2.status == "passed", [e for e in r2.expectations if not e.passed]
    assert any("PCR_POLICY_MISMATCH" in e.name and e.passed for e in r2.expectations), r2.expectations

    with tpmlab.emulated(firmware=None, out_dir=tmp_path / "c", database=db) as dut:
        dut.boot()
    rows = sqlite3.connect(db).execute("SELECT scenario, status FROM runs ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["power-cycle", "py-built", "python"]


def test_bench_emulated_opens_a_dut():
    with tpmlab.Bench("emulated").open(firmware=None) as dut:
        assert dut.boot().passed
    with pytest.raises(NotImplementedError, match="issue 7"):
        tpmlab.Bench("lab-bench.yaml")
