"""What a run leaves stays readable: a past run.json loads into the same typed
objects (and diffs like the run's own snapshots), and a run whose temporary
folder is gone keeps its report in memory instead of returning {}."""
import json

import pytest

import tpmlab

SCENARIO_STEPS = ["boot", "enroll", {"firmware_update": {"platform": "firmware-blob"}}, {"power_cycle": "reset"},
                  {"power_cycle": "power-loss"}]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    scenario = tpmlab.Scenario("past-run", platform={"firmware": "baseline"}, steps=SCENARIO_STEPS)
    return tpmlab.run_scenario(scenario, out_dir=out)


def test_load_run_gives_the_same_typed_objects(finished_run):
    loaded = tpmlab.load_run(finished_run.run_json)
    assert isinstance(loaded, tpmlab.RunResult)
    assert tpmlab.RunResult.load(finished_run.run_json.parent).status == loaded.status  # the folder works too
    assert (loaded.status, loaded.run_id, loaded.seed) == (finished_run.status, finished_run.run_id, finished_run.seed)
    assert loaded.expectations == finished_run.expectations
    assert [(s.index, s.action, s.kind, s.status) for s in loaded.steps] == \
           [(s.index, s.action, s.kind, s.status) for s in finished_run.steps]
    for old, now in zip(loaded.steps, finished_run.steps):
        assert old.alarm_codes() == now.alarm_codes()
        assert all(isinstance(a, tpmlab.Alarm) for a in old.alarms)
        assert (old.snapshot is None) == (now.snapshot is None)
        if now.snapshot is not None:
            assert isinstance(old.snapshot, tpmlab.Snapshot)
            assert old.snapshot.pcrs == now.snapshot.pcrs
            assert old.snapshot.clock == now.snapshot.clock
            assert old.snapshot.ek_name == now.snapshot.ek_name and old.snapshot.quote_verified
            assert old.snapshot.eventlog == now.snapshot.eventlog
    assert loaded.provenance == finished_run.provenance


def test_diff_compares_snapshots_of_a_past_run(finished_run):
    run_json = finished_run.run_json
    boot, update = finished_run.steps[0], finished_run.steps[3]  # boot, then the first boot of the new firmware
    assert boot.action == "boot" and update.action == "power_cycle"
    in_run = tpmlab.diff(boot.snapshot, update.snapshot)
    assert "FIRMWARE_BLOB" in in_run.cause_codes() and 0 in in_run.pcrs["sha256"]
    by_reference = tpmlab.diff(f"{run_json}:{boot.index}", f"{run_json}:{update.index}")
    assert by_reference.as_dict() == in_run.as_dict()
    step = tpmlab.load_run(f"{run_json}:{update.index}")
    assert isinstance(step, tpmlab.StepResult) and step.index == update.index
    assert tpmlab.diff(boot, step).as_dict() == in_run.as_dict()


def test_load_run_errors_say_what_is_wrong(finished_run, tmp_path):
    run_json = finished_run.run_json
    with pytest.raises(IndexError, match=r"no step 99 in .*run\.json"):
        tpmlab.load_run(f"{run_json}:99")
    enroll = finished_run.steps[1]
    assert enroll.action == "enroll" and enroll.snapshot is None
    with pytest.raises(ValueError, match=r"took no snapshot"):
        tpmlab.diff(f"{run_json}:{enroll.index}", f"{run_json}:{finished_run.steps[0].index}")
    with pytest.raises(FileNotFoundError, match=r"nope\.json: cannot read the run"):
        tpmlab.load_run(tmp_path / "nope.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"other\.json: not a tpmlab run\.json"):
        tpmlab.load_run(tmp_path / "other.json")


def test_a_run_in_a_temporary_folder_keeps_its_report():
    with tpmlab.emulated(firmware=None) as dut:
        dut.boot()
        folder = dut.out_dir
    result = dut.result
    assert not folder.exists() and dut.out_dir is None
    assert result.run_json is None  # never a path to a folder that is gone
    report = result.report()
    assert report["status"] == "passed" and len(report["steps"]) == 1
    assert result.provenance["tpmlab_version"] == tpmlab.__version__


def test_a_report_that_is_gone_is_an_error_not_empty(tmp_path):
    with tpmlab.emulated(firmware=None, out_dir=tmp_path / "kept") as dut:
        dut.boot()
    result = dut.result
    assert result.run_json == tmp_path / "kept" / "run.json" and result.run_json.exists()
    result.run_json.unlink()
    with pytest.raises(FileNotFoundError, match=r"run\.json is gone"):
        result.report()
    with pytest.raises(FileNotFoundError):
        result.provenance


def test_rc_is_read_whether_run_json_stores_a_number_or_a_name():
    for rc in (0x120, "0x120", "TPM_RC_DISABLED (0x120)", {"name": "TPM_RC_DISABLED", "hex": "0x120"}):
        assert tpmlab.StepResult({"rc": rc}).rc == 0x120, rc
    assert tpmlab.StepResult({}).rc is None
    assert json.dumps(tpmlab.StepResult({"rc": 0x120}).as_dict()) == '{"rc": 288}'


def test_a_compact_run_json_reads_its_snapshots_from_the_database(finished_run, tmp_path):
    # A long run's run.json (or `tpmlab run --run-json compact`) names where each
    # snapshot is instead of holding it; loading it gives the same snapshots.
    report = json.loads(finished_run.run_json.read_text())
    for step in report["steps"]:
        if "snapshot" in step:
            step["snapshot"] = {"stored": {"database": report["database"], "run_id": report["run_id"],
                                           "step": step["index"]}}
    report["step_snapshots"] = "stored"
    compact = tmp_path / "run.json"
    compact.write_text(json.dumps(report))
    loaded = tpmlab.load_run(compact)
    for old, now in zip(loaded.steps, finished_run.steps):
        assert (old.snapshot is None) == (now.snapshot is None)
        if now.snapshot is not None:
            assert old.snapshot.pcrs == now.snapshot.pcrs and old.snapshot.ek_name == now.snapshot.ek_name
            assert old.snapshot.quote_verified
    missing = dict(report, steps=[dict(s) for s in report["steps"]])
    missing["steps"][0]["snapshot"] = {"stored": {"database": str(tmp_path / "gone.db"), "run_id": 1, "step": 0}}
    compact.write_text(json.dumps(missing))
    with pytest.raises(Exception, match=r"gone\.db"):
        tpmlab.load_run(compact)
