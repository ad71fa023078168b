"""The pytest plugin under pytest-xdist: every worker has its own DUT (the
`tpm` fixture's emulated chip in the worker's own folder) and, with one
--tpmlab-bench per worker, its own bench; a bench count that does not match
the workers is refused before any test runs."""
import json

import pytest

pytest.importorskip("xdist", reason="pytest-xdist is not installed (Debian python3-pytest-xdist)")

TESTS = """
import json, os, pytest

def _record(what):
    with open(os.environ["TPMLAB_XDIST_RECORD"], "a") as f:
        f.write(json.dumps(dict(what, worker=os.environ.get("PYTEST_XDIST_WORKER"))) + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_tpm(tpm, n):
    snapshot = tpm.last_snapshot
    _record({"test": n, "out_dir": str(tpm.out_dir), "ek": snapshot.ek_name})
    assert tpm.power_cycle("reset").passed

def test_bench(bench):
    with bench.open(firmware=None) as dut:
        assert dut.boot().passed
        _record({"bench": bench.name, "out_dir": str(dut.out_dir)})
"""


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_worker_its_own_emulated_dut(pytester, monkeypatch):
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("TPMLAB_XDIST_RECORD", str(record))
    pytester.makepyfile(test_lab=TESTS)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "-n", "2", "-k", "test_tpm")
    result.assert_outcomes(passed=6)
    runs = [r for r in _records(record) if "ek" in r]
    assert len(runs) == 6, runs
    assert {r["worker"] for r in runs} == {"gw0", "gw1"}, runs
    # Every test its own chip and folder, whichever worker ran it: no two share one.
    assert len({r["out_dir"] for r in runs}) == 6, runs
    assert len({r["ek"] for r in runs}) == 6, runs
    for r in runs:
        assert f"popen-{r['worker']}" in r["out_dir"], r  # the worker's own folder


def test_each_worker_takes_its_own_bench(pytester, monkeypatch, source_dir):
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("TPMLAB_XDIST_RECORD", str(record))
    pytester.makepyfile(test_lab=TESTS)
    benches = [str(source_dir / "hw/benches/emulated.yaml"), str(source_dir / "hw/benches/simulated-spi.yaml")]
    # --dist each: both workers run the test, each on its own bench.
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "-n", "2", "--dist", "each",
                                           "-k", "test_bench", "--rootdir", str(pytester.path),
                                           "--tpmlab-bench", benches[0], "--tpmlab-bench", benches[1])
    result.assert_outcomes(passed=2)
    runs = sorted(_records(record), key=lambda r: r["worker"])
    assert [(r["worker"], r["bench"]) for r in runs] == [("gw0", "emulated"), ("gw1", "simulated-spi")], runs
    assert runs[0]["out_dir"] != runs[1]["out_dir"]


def test_bench_count_must_match_the_workers(pytester):
    pytester.makepyfile(test_lab=TESTS)
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "-n", "2", "--tpmlab-bench", "emulated")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tpmlab-bench given 1 times for 2 pytest-xdist workers*one --tpmlab-bench per "
                                 "worker*"])
    # Several benches without xdist: refused too, rather than all but one ignored.
    result = pytester.runpytest_subprocess("-p", "tpmlab.pytest_plugin", "--tpmlab-bench", "emulated",
                                           "--tpmlab-bench", "emulated")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
