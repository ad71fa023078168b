"""pytest plugin: ``pytest -p tpmlab.pytest_plugin`` (or installed: the ``pytest11`` entry point).

Fixtures
  ``tpm``    a fresh emulated DUT per test, already booted (a :class:`tpmlab.Dut`)
  ``bench``  the :class:`tpmlab.Bench` named by ``--tpmlab-bench FILE`` (or ``emulated``);
             tests using it skip when no bench is given, and error when a part of the
             given bench is missing on this machine (``tpmlab bench check`` says the same)
pytest-xdist (``-n N``)
  Each worker takes its own bench: give ``--tpmlab-bench`` once per worker, and worker
  ``gwK`` gets the K-th (``-n 2 --tpmlab-bench A --tpmlab-bench B``). Fewer or more
  benches than workers is a usage error before any test runs: two workers on one real
  chip would clear and re-key it under each other (repeat an emulated bench's file to
  give several workers one each). ``tpm`` needs no bench: every test gets its own
  emulated DUT in its own folder, whichever worker runs it.
Markers
  ``destructive``  the test clears, re-keys or rewrites the TPM (wears real chips' NV);
             deselect with ``-m "not destructive"``
Failed expectations
  ``tpm.expect(...)`` raises :class:`tpmlab.ExpectationFailed` (an AssertionError), which
  fails the test where it was called. A failed expectation no exception reported (an
  ``expect`` run with ``tpm.step``/``tpm.run``, a step error or refusal no ``expect``
  covered, an alarm under ``unexpected_alarms: fail``) fails the test at teardown.
Provenance
  The tpmlab version, the swtpm version and the platform and TPM firmware versions
  the tests saw are JUnit test-suite properties (``--junitxml``).
"""
from __future__ import annotations

import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

try:
    import pytest
except ImportError as _error:  # imported by hand into an interpreter without pytest
    raise ImportError(
        f"the tpmlab pytest plugin needs pytest, which {sys.executable} does not have ({_error}). Run the tests "
        "with an interpreter that has it: `pytest -p tpmlab.pytest_plugin` (Debian's python3-pytest) or "
        "`/usr/bin/python3 -m pytest -p tpmlab.pytest_plugin`; or `python3 -m pip install pytest` and "
        "PYTHONPATH=<build>/python for this one (python/README.md)") from _error

import tpmlab

_provenance: Dict[str, Set[str]] = {}


def _note(key: str, value: Any) -> None:
    if value:
        for v in str(value).split(","):
            _provenance.setdefault(key, set()).add(v)


def _note_run(result: Optional[tpmlab.RunResult]) -> None:
    if result is None:
        return
    try:
        p = result.provenance
    except (OSError, ValueError):
        return  # no run.json to read: nothing to record
    dut = str(p.get("dut", ""))
    if "(swtpm " in dut:
        _note("swtpm_version", dut.split("(swtpm ", 1)[1].rstrip(")"))
    _note("platform_firmware", p.get("platform_firmware"))
    _note("tpm_firmware_versions", p.get("tpm_firmware_versions"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Adds --tpmlab-bench and --tpmlab-firmware."""
    group = parser.getgroup("tpmlab")
    group.addoption("--tpmlab-bench", action="append", default=None, metavar="FILE",
                    help="bench file the `bench` fixture opens (hw/README.md), or 'emulated'; under "
                         "pytest-xdist once per worker (worker gwK takes the K-th)")
    group.addoption("--tpmlab-firmware", action="store", default="baseline", metavar="MODEL",
                    help="firmware model of the `tpm` fixture's emulated platform (default: baseline)")


def _worker(config: pytest.Config) -> Tuple[Optional[str], int]:
    """This process's pytest-xdist worker id (``gw1``) and the count of workers; (None, 1) without xdist."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["workerid"]), int(workerinput.get("workercount", 1))
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if isinstance(numprocesses, int) and numprocesses > 0 and dist != "no":
        return None, numprocesses  # the controller: the workers run the tests
    return None, 1


def pytest_configure(config: pytest.Config) -> None:
    """Declares the destructive marker; checks there is one bench per xdist worker."""
    config.addinivalue_line(
        "markers", "destructive: clears, re-keys or rewrites the TPM (wears a real chip's NV); "
        "deselect with -m 'not destructive'")
    benches: List[str] = config.getoption("--tpmlab-bench") or []
    _, workers = _worker(config)
    if len(benches) > 1 or (benches and workers > 1):
        if len(benches) != workers:
            how = f"{workers} pytest-xdist workers" if workers > 1 else "no pytest-xdist workers (-n)"
            raise pytest.UsageError(
                f"--tpmlab-bench given {len(benches)} times for {how}: each worker takes its own bench "
                f"(worker gwK the K-th), so give exactly one --tpmlab-bench per worker (-n {len(benches)}); "
                "two workers on one real chip would clear and re-key it under each other")


@pytest.fixture(scope="session", autouse=True)
def _tpmlab_provenance(record_testsuite_property: Any) -> Iterator[None]:
    """Records what ran as JUnit test-suite properties once the session's tests are done."""
    yield
    record_testsuite_property("tpmlab_version", tpmlab.__version__)
    for key in sorted(_provenance):
        record_testsuite_property(key, ",".join(sorted(_provenance[key])))


@pytest.fixture
def tpm(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tpmlab.Dut]:
    """A fresh emulated TPM for this test, booted (its out_dir is the test's tmp_path).

    At teardown the run is finished; failed expectations that no
    :class:`tpmlab.ExpectationFailed` reported fail the test there."""
    firmware = request.config.getoption("--tpmlab-firmware")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    worker, _ = _worker(request.config)
    if worker:
        name = f"{worker}-{name}"  # which worker's DUT, in run.json and the database
    with tpmlab.emulated(firmware=firmware, out_dir=tmp_path / "tpmlab", name=name) as dut:
        boot = dut.boot()
        if boot.status != "passed":
            pytest.fail(f"the emulated TPM did not boot: {boot}")
        yield dut
        result = dut.finish()
        _note_run(result)
    unreported = dut._unraised_failures()
    if unreported:
        lines = [f"{e.name}: {e.detail}" for e in unreported]
        pytest.fail(f"the run has {len(unreported)} failed expectation(s) (run.json: {result.run_json}):\n  "
                    + "\n  ".join(lines), pytrace=False)
    if result.status == "error":
        pytest.fail(f"the run ended in error: {result.error} (run.json: {result.run_json})", pytrace=False)


@pytest.fixture(scope="session")
def _tpmlab_bench(request: pytest.FixtureRequest) -> Optional[tpmlab.Bench]:
    """The bench, loaded and checked once per session: this xdist worker's own."""
    benches: List[str] = request.config.getoption("--tpmlab-bench") or []
    if not benches:
        return None
    worker, _ = _worker(request.config)
    source = benches[int(worker[2:]) if worker and worker[2:].isdigit() else 0]
    bench = tpmlab.Bench(source)
    missing = bench.missing()
    if missing:
        pytest.fail(f"--tpmlab-bench {source}: missing on this machine:\n  " + "\n  ".join(missing), pytrace=False)
    return bench


@pytest.fixture
def bench(_tpmlab_bench: Optional[tpmlab.Bench]) -> tpmlab.Bench:
    """The bench named by ``--tpmlab-bench``; the test is skipped when none was given.

    Open a DUT on it with ``with bench.open() as dut:``; its runs' provenance is recorded."""
    if _tpmlab_bench is None:
        pytest.skip("no bench given (use --tpmlab-bench FILE)")
    _note("bench", _tpmlab_bench.name)
    return _tpmlab_bench
