"""Errors become exceptions of their layer, carrying their details; a step
that fails inside a run is a result, not an exception."""
import inspect
import json
import os
import subprocess
import sys

import pytest

import tpmlab
from tpmlab import _core

BAD_SCENARIO = """name: bad
steps:
  - boot
  - power_cycle: {kind: sideways}
"""


def test_bad_scenario_text_names_line_and_column():
    with pytest.raises(tpmlab.ScenarioError) as info:
        tpmlab.load_scenario(BAD_SCENARIO, text=True)
    e = info.value
    assert (e.line, e.column) == (4, 25), str(e)  # 1-based: the "s" of sideways
    assert e.file == "<scenario text>"  # the caller's text, not a file
    assert str(e).startswith("<scenario text>:4:25: ") and f"{__file__}:" in str(e), str(e)
    assert e.layer == "scenario"
    assert isinstance(e, tpmlab.TpmlabError)


def test_bad_python_scenario_names_the_python_line_that_built_it_and_the_step():
    line = inspect.currentframe().f_lineno + 1
    scenario = tpmlab.Scenario("bad", steps=["boot", {"power_cycle": "reset"}, {"no_such_step": 1}])
    with pytest.raises(tpmlab.ScenarioError) as info:
        scenario.load()
    e = info.value
    assert (e.file, e.line, e.column) == (__file__, line, None)
    assert str(e).startswith(f"{__file__}:{line}: scenario 'bad', steps[2] (no_such_step): "), str(e)
    assert ".yaml" not in str(e)
    with pytest.raises(tpmlab.ScenarioError, match=r"scenario 'bad', platform: unknown bank 'md5'"):
        tpmlab.Scenario("bad", steps=["boot"], platform={"banks": ["md5"]}).load()


def test_bad_step_on_a_dut_names_the_python_caller_and_the_step():
    with tpmlab.emulated(firmware=None) as dut:
        line = inspect.currentframe().f_lineno + 2
        with pytest.raises(tpmlab.ScenarioError) as info:
            dut.power_cycle("sideways")
        e = info.value
        assert (e.file, e.line, e.layer) == (__file__, line, "scenario")
        assert str(e).startswith(f"{__file__}:{line}: power_cycle: "), str(e)
        assert "sideways" in str(e) and ".yaml" not in str(e)
        with pytest.raises(tpmlab.ScenarioError, match=r"test_errors\.py:\d+: repeat: "):
            dut.run({"repeat": {"count": 2, "steps": [{"power_cycle": "sideways"}]}})
        assert dut.boot().passed
        # The run's record names the Python line too, never the YAML text tpmlab wrote.
        cycled = dut.power_cycle(); expect_line = inspect.currentframe().f_lineno + 1  # noqa: E702
        dut.expect(absent=["CLOCK_SKEW"])
        assert cycled.kind == "reset"  # the default kind
    expectation = dut.result.expectations[-1]
    assert expectation.where == f"{__file__}:{expect_line}", expectation
    assert "py-step.yaml" not in json.dumps(dut.result.report()["expectations"])


def test_power_cycle_takes_kind_or_mix_not_both():
    with tpmlab.emulated(firmware=None) as dut:
        dut.boot()
        with pytest.raises(tpmlab.ScenarioError, match=r"power_cycle: power_cycle takes kind or mix, not both"):
            dut.power_cycle(kind="reset", mix={"resume": 1})
        assert dut.power_cycle(mix={"resume": 1}).kind == "resume"
        assert dut.power_cycle("restart").kind == "restart"


def test_missing_scenario_file(tmp_path):
    with pytest.raises(tpmlab.TpmlabError):
        tpmlab.run_scenario(tmp_path / "nope.yaml", out_dir=tmp_path / "out")


def test_garbage_event_log_is_a_parse_error_with_its_offset():
    with pytest.raises(tpmlab.ParseError) as info:
        tpmlab.EventLog.parse(b"\x00\x00\x00\x00\x03\x00\x00\x00" + b"\xff" * 40)
    assert info.value.offset is not None, str(info.value)
    assert info.value.layer == "parse"
    assert info.value.kind == "bad_input"


def test_error_fields_come_from_the_status_not_the_message():
    # The message names no place at all: every field is read from the Status's data.
    with pytest.raises(tpmlab.ScenarioError) as info:
        _core._raise_status("scenario", "no place in this text", file="bench.yaml", line=3, column=9)
    e = info.value
    assert (e.file, e.line, e.column, e.offset) == ("bench.yaml", 3, 9, None)
    assert (e.kind, e.layer, e.reason) == ("bad_input", "scenario", "no place in this text")
    # And text that looks like a place is not taken for one.
    with pytest.raises(tpmlab.ParseError) as info:
        _core._raise_status("parse", "other.yaml:12:5: at byte 99")
    e = info.value
    assert (e.file, e.line, e.column, e.offset) == (None, None, None, None)
    with pytest.raises(tpmlab.ParseError) as info:
        _core._raise_status("parse", "truncated", file="log.bin", offset=40)
    assert (info.value.file, info.value.offset, info.value.kind) == ("log.bin", 40, "bad_input")
    with pytest.raises(tpmlab.MissingDependencyError) as info:
        _core._raise_status("environment", "install swtpm")
    assert info.value.kind == "missing_package"


def test_scenario_file_error_has_file_line_column_and_reason(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_SCENARIO)
    with pytest.raises(tpmlab.ScenarioError) as info:
        tpmlab.load_scenario(f)
    e = info.value
    assert (e.file, e.line, e.column) == (str(f), 4, 25), str(e)
    assert str(e) == f"{f}:4:25: {e.reason}"
    assert "sideways" in e.reason and e.kind == "bad_input"


def test_tpm_error_carries_the_response_code():
    with pytest.raises(tpmlab.TpmError) as info:
        _core._raise_status("tpm", "TPM2_Clear: TPM_RC_DISABLED", 0x120)
    assert info.value.rc == 0x120
    assert (info.value.kind, info.value.layer) == ("tpm_refusal", "tpm")
    with pytest.raises(tpmlab.TransportError):
        _core._raise_status("transport", "connect: refused", 0)


def test_a_hung_tpm_is_a_step_result_not_an_exception():
    with tpmlab.emulated(firmware=None, command_timeout_ms=300) as dut:
        dut.boot()
        dut.fault("hang")
        step = dut.verify()
        assert step.status == "error"
        assert "TPM_UNREACHABLE" in step.alarm_codes()
        dut.fault("unhang")


def test_launching_without_swtpm_is_a_missing_dependency_error(tmp_path):
    code = ("import tpmlab\n"
            "try:\n"
            "    with tpmlab.emulated(firmware=None):\n"
            "        pass\n"
            "except tpmlab.MissingDependencyError as e:\n"
            "    print('missing:', e)\n")
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "missing:" in proc.stdout and "swtpm" in proc.stdout
