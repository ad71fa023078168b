"""The pytest plugin: a booted `tpm`, a `bench` that skips without --tpmlab-bench,
the destructive marker, provenance as JUnit properties."""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import tpmlab

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


def run_python(code, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_the_plugin_without_pytest_says_how_to_run_it(tmp_path):
    # An interpreter without pytest (a pyenv python3 first on PATH), simulated by a pytest that does not import.
    (tmp_path / "pytest.py").write_text("raise ImportError(\"No module named 'pytest'\")\n")
    package = Path(tpmlab.__file__).resolve().parent.parent
    proc = run_python("import tpmlab.pytest_plugin", [tmp_path, package])
    assert proc.returncode != 0
    assert "the tpmlab pytest plugin needs pytest" in proc.stderr, proc.stderr
    assert "/usr/bin/python3 -m pytest -p tpmlab.pytest_plugin" in proc.stderr


def test_an_extension_built_for_another_python_says_so(tmp_path):
    # The pure package without a _core this interpreter can load.
    copy = tmp_path / "tpmlab"
    copy.mkdir()
    for f in Path(tpmlab.__file__).resolve().parent.glob("*.py"):
        shutil.copy(f, copy / f.name)
    (copy / "_core.cpython-20-x86_64-linux-gnu.so").write_bytes(b"")
    proc = run_python("import tpmlab", [tmp_path])
    assert proc.returncode != 0
    assert "does not load into " + sys.executable in proc.stderr, proc.stderr
    assert "Built: _core.cpython-20-x86_64-linux-gnu.so" in proc.stderr
    assert "-DPython_EXECUTABLE=" in proc.stderr
