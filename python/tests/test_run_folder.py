"""One run at a time writes into a folder: a second session opened on a
folder in use fails at once, naming the run holding it, and the first goes
on undisturbed; once it finishes, the folder is free."""
import os

import pytest

import tpmlab


def test_a_folder_in_use_is_refused_at_once(tmp_path):
    out = tmp_path / "run"
    first = tpmlab.open_emulated(out_dir=out)
    try:
        first.boot()
        with pytest.raises(tpmlab.TpmlabError, match=rf"is in use by another tpmlab run \(pid {os.getpid()}, since "):
            tpmlab.open_emulated(out_dir=out)
        assert first.power_cycle("reset").status == "passed"
    finally:
        first.finish()
    # Finished: its run is never overwritten ...
    with pytest.raises(FileExistsError, match="already holds a run"):
        tpmlab.open_emulated(out_dir=out)
    with pytest.raises(FileExistsError, match="already holds a run"):
        tpmlab.run_scenario(tpmlab.Scenario("again", steps=["boot"]), out_dir=out)
    # ... and, once that run is moved away, the folder is free again.
    (out / "run.json").unlink()
    with tpmlab.emulated(out_dir=out) as again:
        again.boot()
