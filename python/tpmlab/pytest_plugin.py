"""pytest plugin: ``pytest -p tpmlab.pytest_plugin`` (or installed: the ``pytest11`` entry point).

Fixtures
  ``tpm``    a fresh emulated DUT per test, already booted (a :class:`tpmlab.Dut`)
  ``bench``  the :class:`tpmlab.Bench` named by ``--tpmlab-bench FILE`` (or ``emulated``);
             tests using it skip when no bench is given, and error when a part of the
             given bench is missing on this machine (``tpmlab bench check`` says the same)
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
from typing import Any, Dict, Iterator, Optional, Set

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
    group.addoption("--tpmlab-bench", action="store", default=None, metavar="FILE",
                    help="bench file the `bench` fixture opens (hw/README.md), or 'emulated'")
    group.addoption("--tpmlab-firmware", action="store", default="baseline", metavar="MODEL",
                    help="firmware model of the `tpm` fixture's emulated platform (default: baseline)")


def pytest_configure(config: pytest.Config) -> None:
    """Declares the destructive marker."""
    config.addinivalue_line(
        "markers", "destructive: clears, re-keys or rewrites the TPM (wears a real chip's NV); "
        "deselect with -m 'not destructive'")


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
    """The bench, loaded and checked once per session."""
    source = request.config.getoption("--tpmlab-bench")
    if not source:
        return None
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
