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


def test_bench_from_a_file_runs_and_a_missing_part_is_an_error(pytester, source_dir):
    pytester.makepyfile(test_lab=TESTS)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "emulated",
                                           "-m", "not destructive")
    result.assert_outcomes(passed=2, deselected=1)
    # The simulated SPI TPM: the bench test boots over TIS with wait states.
    only_bench = ("-k", "on_a_bench", "--rootdir", str(pytester.path))  # the tmp path's name holds "bench" too
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", *only_bench,
                                           "--tpmlab-bench", str(source_dir / "hw/benches/simulated-spi.yaml"))
    result.assert_outcomes(passed=1, deselected=2)
    # A bench whose part is not on this machine: an error naming it, not a silent skip.
    pytester.makefile(".yaml", lab="name: lab\ndut: {transport: device, path: /nonexistent/tpmrm9}\n")
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "lab.yaml", *only_bench)
    result.assert_outcomes(errors=1, deselected=2)
    result.stdout.fnmatch_lines(["*missing on this machine*", "*dut: /nonexistent/tpmrm9: no TPM device*"])
    # A broken bench file: the error says where.
    pytester.makefile(".yaml", broken="name: x\ndut: {transport: device, speed: 9}\n")
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "broken.yaml", *only_bench)
    result.assert_outcomes(errors=1, deselected=2)
    result.stdout.fnmatch_lines(["*broken.yaml:2:*unknown key*speed*"])
