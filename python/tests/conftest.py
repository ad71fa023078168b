"""Shared helpers for the tpmlab Python tests (run with PYTHONPATH=<build>/python)."""
import os
from pathlib import Path

import pytest

import tpmlab

pytest_plugins = ["pytester"]

SOURCE_DIR = Path(os.environ.get("TPMLAB_SOURCE_DIR", Path(__file__).resolve().parents[2]))
EXAMPLES_DIR = Path(tpmlab.__file__).resolve().parent / "examples"


@pytest.fixture
def source_dir() -> Path:
    return SOURCE_DIR
