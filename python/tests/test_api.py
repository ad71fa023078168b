"""The API mirrors the harness: snapshots, event logs, drift, scenarios, one store."""
import json
import sqlite3
from pathlib import Path

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


def test_tpmlab_db_is_the_default_database(source_dir, tmp_path, monkeypatch):
    """As `tpmlab run` without --db: a lab's TPMLAB_DB collects the run, not OUT/tpmlab.db."""
    shared = tmp_path / "lab.db"
    monkeypatch.setenv("TPMLAB_DB", str(shared))
    r = tpmlab.run_scenario(source_dir / "scenarios" / "power-cycle.yaml", out_dir=tmp_path / "a", cycles=1)
    assert r.status == "passed", r
    assert not (tmp_path / "a" / "tpmlab.db").exists()
    rows = sqlite3.connect(shared).execute("SELECT scenario, status FROM runs").fetchall()
    assert rows == [("power-cycle", "passed")]


def test_bench_emulated_opens_a_dut():
    bench = tpmlab.Bench()
    assert bench.emulated and all(bench.allow.values()) and "clear" in bench.allow
    with bench.open(firmware=None) as dut:
        assert dut.boot().passed


def test_bench_file_runs_a_dut_over_the_simulated_spi_tpm(source_dir, tmp_path):
    bench = tpmlab.Bench(source_dir / "hw/benches/simulated-spi.yaml")
    assert bench.name == "simulated-spi" and bench.emulated and bench.transport == "tis-spi-sim"
    assert bench.missing() == []
    assert "simulated-spi" in repr(bench)
    with bench.open(out_dir=tmp_path / "dut") as dut:
        assert dut.boot().passed
        assert dut.power_cycle("power-loss").passed
    run = json.loads((tmp_path / "dut" / "run.json").read_text())
    assert run["dut"]["bus"] == "tis-spi" and run["dut"]["bench"] == "simulated-spi"
    # A whole scenario on the bench, as `tpmlab run --bench` does.
    result = bench.run(source_dir / "scenarios/attest.yaml", out_dir=tmp_path / "attest")
    assert result.passed, result


def test_bench_files_are_checked_and_real_chips_guarded(source_dir, tmp_path):
    host = tpmlab.Bench(source_dir / "hw/benches/host-tpmrm0.yaml")
    assert not host.emulated and host.allow["clear"] is False
    if not Path("/dev/tpmrm0").exists():
        assert any("/dev/tpmrm0" in m for m in host.missing())
    # A real chip refuses a scenario that clears it before anything runs.
    with pytest.raises(tpmlab.ScenarioError, match=r"alarm-tpm-cleared.yaml:\d+:\d+: clear needs allow.clear"):
        host.run(source_dir / "scenarios/alarm-tpm-cleared.yaml", out_dir=tmp_path / "refused")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndut: {transport: carrier-pigeon}\n")
    with pytest.raises(tpmlab.ScenarioError, match=r"bad.yaml:2:\d+: dut.transport must be one of"):
        tpmlab.Bench(bad)


def test_alarm_codes_are_unique_in_first_seen_order():
    step = tpmlab.StepResult({"alarms": [{"code": "PCR_POLICY_MISMATCH", "evidence": {"pcr": "0"}},
                                         {"code": "CLOCK_NOT_SAFE"},
                                         {"code": "PCR_POLICY_MISMATCH", "evidence": {"pcr": "2"}}]})
    assert step.alarm_codes() == ["PCR_POLICY_MISMATCH", "CLOCK_NOT_SAFE"]
    assert len(step.alarms) == 3  # every alarm, with its own evidence, stays in .alarms


def test_a_new_firmware_alarms_once_per_code(tmp_path):
    with tpmlab.emulated(out_dir=tmp_path / "run") as dut:
        dut.boot()
        dut.enroll()
        dut.firmware_update(platform="firmware-blob")
        step = dut.power_cycle("reset")
    codes = step.alarm_codes()
    assert "PCR_POLICY_MISMATCH" in codes and len(codes) == len(set(codes)), step.alarms


PUBLIC_CLASSES = [tpmlab.Dut, tpmlab.Bench, tpmlab.RunResult, tpmlab.StepResult, tpmlab.Snapshot, tpmlab.EventLog,
                  tpmlab.Drift, tpmlab.Scenario, tpmlab.ExpectationFailed]


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring(cls):
    import inspect
    undocumented = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if callable(target) and not (inspect.getdoc(target) or "").strip():
            undocumented.append(name)
    assert undocumented == [], f"{cls.__name__}: no docstring on {undocumented}"


def test_every_public_function_has_a_docstring():
    import inspect
    undocumented = [name for name in tpmlab.__all__
                    if callable(getattr(tpmlab, name)) and not inspect.getdoc(getattr(tpmlab, name))]
    assert undocumented == []


@pytest.mark.skipif(not (Path("/usr/bin/qemu-system-x86_64").exists() and Path("/usr/bin/sbsign").exists()
                         and Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd").exists()
                         and any(Path("/boot").glob("vmlinuz-*"))),
                    reason="the QEMU board needs qemu-system-x86, ovmf, sbsigntool and a kernel in /boot")
def test_a_qemu_board_runs_a_scenario_from_python(source_dir, tmp_path):
    # One real boot of OVMF: the agent is found beside the extension module.
    board = tpmlab.Bench(source_dir / "hw/benches/qemu-ovmf.yaml")
    assert board.transport == "qemu" and not board.emulated and board.missing() == []
    result = board.run(source_dir / "scenarios/attest.yaml", out_dir=tmp_path / "board")
    assert result.passed, result
    run = json.loads((tmp_path / "board" / "run.json").read_text())
    assert run["dut"]["kind"] == "qemu"
    boot = run["steps"][0]["detail"]
    assert boot["board"]["accel"] in ("tcg", "kvm") and boot["board"]["firmware"] == "baseline"
    assert {"command": "TPM2_Startup", "type": "CLEAR", "rc": 0} in boot["platform_commands"]
