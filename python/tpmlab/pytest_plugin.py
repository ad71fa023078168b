"""pytest plugin: ``pytest -p tpmlab.pytest_plugin`` (or installed: the ``pytest11`` entry point).

Fixtures
  ``tpm``    a fresh emulated DUT per test, already booted (a :class:`tpmlab.Dut`)
  ``bench``  the :class:`tpmlab.Bench` named by ``--tpmlab-bench FILE`` (or ``emulated``);
             tests using it skip when no bench is given, and error when a part of the
             given bench is missing on this machine (``tpmlab bench check`` says the same)
Markers
  ``destructive``  the test clears, re-keys or rewrites the TPM (wears real chips' NV);
             deselect with ``-m "not destructive"``
Provenance
  The tpmlab version, the swtpm version and the platform and TPM firmware versions
  the tests saw are JUnit test-suite properties (``--junitxml``).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Optional, Set

import pytest

import tpmlab

_provenance: Dict[str, Set[str]] = {}


def _note(key: str, value: Any) -> None:
    if value:
        for v in str(value).split(","):
            _provenance.setdefault(key, set()).add(v)


def _note_run(result: Optional[tpmlab.RunResult]) -> None:
    if result is None:
        return
    p = result.provenance
    dut = str(p.get("dut", ""))
    if "(swtpm " in dut:
        _note("swtpm_version", dut.split("(swtpm ", 1)[1].rstrip(")"))
    _note("platform_firmware", p.get("platform_firmware"))
    _note("tpm_firmware_versions", p.get("tpm_firmware_versions"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tpmlab")
    group.addoption("--tpmlab-bench", action="store", default=None, metavar="FILE",
                    help="bench file the `bench` fixture opens (hw/README.md), or 'emulated'")
    group.addoption("--tpmlab-firmware", action="store", default="baseline", metavar="MODEL",
                    help="firmware model of the `tpm` fixture's emulated platform (default: baseline)")


def pytest_configure(config: pytest.Config) -> None:
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
    """A fresh emulated TPM for this test, booted (its out_dir is the test's tmp_path)."""
    firmware = request.config.getoption("--tpmlab-firmware")
    with tpmlab.emulated(firmware=firmware, out_dir=tmp_path / "tpmlab", name=re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]) as dut:
        boot = dut.boot()
        if boot.status != "passed":
            pytest.fail(f"the emulated TPM did not boot: {boot}")
        yield dut
        dut.finish()
        _note_run(dut.result)


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
