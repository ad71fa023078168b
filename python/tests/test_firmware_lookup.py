"""Python finds firmware models by the same search as the CLI (harness/boot
ResolveFirmwareModel): the folder of the file naming the model, then the
installed models, so a stock name works whatever file name the text is
loaded under, and a miss lists every place looked."""
from pathlib import Path

import pytest

import tpmlab
from tpmlab import _core

TEXT = '{"name": "s", "platform": {"firmware": "%s"}, "steps": ["boot"]}'


def test_a_stock_name_resolves_from_any_folder(tmp_path: Path) -> None:
    # No firmware/ beside this name: the installed models (the package's copy) have it.
    scenario = _core.load_scenario_text(TEXT % "baseline", str(tmp_path / "mine.yaml"))
    assert scenario.firmware == "baseline"


def test_the_folder_of_the_scenario_comes_first(tmp_path: Path) -> None:
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "baseline.yaml").write_text("name: my-baseline\n")
    scenario = _core.load_scenario_text(TEXT % "baseline", str(tmp_path / "mine.yaml"))
    assert scenario.firmware == "my-baseline"


def test_a_miss_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(tpmlab.ScenarioError) as e:
        _core.load_scenario_text(TEXT % "no-such-model", str(tmp_path / "mine.yaml"))
    message = str(e.value)
    assert f"{tmp_path}/firmware/no-such-model.yaml, {tmp_path}/no-such-model.yaml, " in message
    package_models = Path(tpmlab.__file__).resolve().parent / "firmware"
    assert str(package_models / "no-such-model.yaml") in message
