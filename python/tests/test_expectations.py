"""A failed expectation fails the test: Dut.expect() raises ExpectationFailed
(an AssertionError) with what was not met, and the pytest fixture fails a test
at teardown for failed expectations nothing raised."""
import inspect

import pytest

import tpmlab


def test_unmet_expect_raises_an_assertion_error_naming_the_caller_and_what_was_not_met():
    with tpmlab.emulated(firmware=None) as dut:
        dut.boot()
        cycled = dut.power_cycle("reset")
        line = inspect.currentframe().f_lineno + 2
        with pytest.raises(tpmlab.ExpectationFailed) as info:
            dut.expect(alarms=["CLOCK_SKEW"])
        e = info.value
        assert isinstance(e, AssertionError) and not isinstance(e, tpmlab.TpmlabError)
        assert str(e).startswith(
            f"{__file__}:{line}: expect on step {cycled.index} (power_cycle reset) not met: alarm CLOCK_SKEW"), str(e)
        assert e.judged_step == cycled.index and e.where == f"{__file__}:{line}"
        assert [c.name for c in e.failed_checks] == ["alarm CLOCK_SKEW"]
        assert e.step.action == "expect" and e.step.status == "failed"
        # A met expectation returns its result.
        assert dut.expect(absent=["CLOCK_SKEW"]).passed
    result = dut.result
    assert result.status == "failed"
    failed = [x for x in result.expectations if not x.passed]
    assert len(failed) == 1 and failed[0].where == f"{__file__}:{line}", result.expectations


PLUGIN_TESTS = """
import pytest
import tpmlab

def test_unmet_expect_fails(tpm):
    tpm.power_cycle("reset")
    tpm.expect(alarms=["CLOCK_SKEW"])

def test_met_expect_passes(tpm):
    tpm.power_cycle("reset")
    tpm.expect(absent=["CLOCK_SKEW"])

def test_unmet_expect_run_as_a_step_fails_at_teardown(tpm):
    tpm.power_cycle("reset")
    assert tpm.step({"expect": {"alarms": ["CLOCK_SKEW"]}}).status == "failed"

def test_an_expected_failure_caught_by_the_test_passes(tpm):
    tpm.power_cycle("reset")
    with pytest.raises(tpmlab.ExpectationFailed, match="CLOCK_SKEW"):
        tpm.expect(alarms=["CLOCK_SKEW"])
"""


def line_of(text: str, code: str) -> int:
    return [n for n, line in enumerate(text.strip().splitlines(), start=1) if code in line][0]


def test_a_test_with_an_unmet_expect_fails(pytester):
    pytester.makepyfile(test_lab=PLUGIN_TESTS)
    expect_line = line_of(PLUGIN_TESTS, 'tpm.expect(alarms=["CLOCK_SKEW"])')
    step_line = line_of(PLUGIN_TESTS, 'tpm.step({"expect"')
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "-rA")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        f"*ExpectationFailed: *test_lab.py:{expect_line}: expect on step * (power_cycle reset) not met: "
        "alarm CLOCK_SKEW*",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_unmet_expect_run_as_a_step_fails_at_teardown*",
        "*the run has 1 failed expectation(s)*",
        f"*expect at *test_lab.py:{step_line} on step * (power_cycle): CLOCK_SKEW*",
    ])
    result.stdout.fnmatch_lines(["FAILED test_lab.py::test_unmet_expect_fails*"])
