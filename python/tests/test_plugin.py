"""The pytest plugin: a booted `tpm`, a `bench` that skips without --tpmlab-bench,
the destructive marker, provenance as JUnit properties."""
import xml.etree.ElementTree as ET

TESTS = """
import pytest

def test_tpm_is_booted(tpm):
    assert tpm.steps[0].action == "boot" and tpm.steps[0].passed
    assert tpm.last_snapshot.clock.restart_count == 0
    assert tpm.power_cycle("restart").passed

@pytest.mark.destructive
def test_clear(tpm):
    assert tpm.clear().passed

def test_on_a_bench(bench):
    with bench.open(firmware=None) as dut:
        assert dut.boot().passed
"""


def test_fixtures_and_provenance(pytester):
    pytester.makepyfile(test_lab=TESTS)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--strict-markers", "-rs",
                                           "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*no bench given (use --tpmlab-bench FILE)*"])
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["tpmlab_version"]
    assert props["swtpm_version"]
    assert props["tpm_firmware_versions"].startswith("0x")
    assert props["platform_firmware"] == "baseline"


def test_bench_emulated_runs_and_real_benches_skip(pytester):
    pytester.makepyfile(test_lab=TESTS)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "emulated",
                                           "-m", "not destructive")
    result.assert_outcomes(passed=2, deselected=1)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "lab.yaml", "-rs",
                                           "-k", "bench")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*real benches come with issue 7*"])
