"""The examples run as a user runs them: python3 example.py."""
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES_DIR


@pytest.mark.parametrize("example, args", [
    ("power_cycle_soak.py", ["--cycles", "8", "--seed", "3"]),
    ("firmware_update_compare.py", []),
    ("clear_and_reenroll.py", []),
])
def test_example_runs(example, args, tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES_DIR / example), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_firmware_update_compare_prints_the_changed_event(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES_DIR / "firmware_update_compare.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert "EV_EFI_PLATFORM_FIRMWARE_BLOB" in proc.stdout
    assert "FIRMWARE_BLOB (PCR 0)" in proc.stdout
