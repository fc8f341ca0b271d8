"""Every notebook is a test item: its cells run top to bottom as `nbdev-test` runs them, honouring the
`tst_flags` of `pyproject.toml`. `pytest -k world` runs one notebook; cells flagged `slow` run only in the
`slow` items (`pytest --slow`)."""
import json, sys
from pathlib import Path

import pytest
import nbdev.test as nbt          # not `from nbdev.test import test_nb`: pytest would collect it
from nbdev.config import get_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import notebook_outputs as outputs  # noqa: E402

CFG = get_config()
NBS = sorted(p for p in Path(CFG.nbs_path).glob("*.ipynb") if not p.name.startswith("_"))
FLAGS = list(CFG.tst_flags) if not isinstance(CFG.tst_flags, str) else CFG.tst_flags.split()

def _flags_in(nb: Path) -> set[str]:
    "The test flags used by a notebook's cells (`#| slow`)."
    cells = json.loads(nb.read_text())["cells"]
    return {f for c in cells if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if line.startswith("#|")
            for f in line[2:].split() if f in FLAGS}

def _run(nb: Path, skip_flags: list[str], monkeypatch, compare: bool = False):
    monkeypatch.chdir(nb.parent)  # nbdev-test runs each notebook from nbs/
    executed = []                 # `save=True` hands the executed notebook to `write_nb`: kept here, not written
    monkeypatch.setattr(nbt, "write_nb", lambda d, fn: executed.append(d))
    ok, secs = nbt.test_nb(nb, skip_flags=skip_flags, basepath=CFG.config_path, save=True)
    assert ok, f"{nb.name} failed (see the cell error above)"
    if compare:                   # the committed outputs are what the notebook prints (issue 20)
        bad = outputs.differences(json.loads(nb.read_text()), json.loads(json.dumps(executed[0], default=list)))
        assert not bad, (f"{nb.name}: outputs differ from the committed ones (refresh them with `python "
                         f"tools/notebook_outputs.py refresh {nb.stem}`, or mark a cell `#| volatile`):\n" + "\n".join(bad))

@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, monkeypatch):
    _run(nb, FLAGS, monkeypatch, compare=True)

def test_notebooks_committed_with_outputs():
    "A notebook committed unexecuted shows a reader nothing: every one is committed with its outputs."
    bad = [p.name for p in NBS if outputs.missing(json.loads(p.read_text()))]
    assert not bad, f"committed without outputs: {bad}; run `python tools/notebook_outputs.py refresh`"

def test_output_comparison_can_fail():
    "The comparison is not vacuous: other words, or a number 5 % off, differ; a rounding in the last digit does not."
    assert outputs.same("loss 0.5012, 12 steps", "loss 0.5013, 12 steps")
    assert not outputs.same("loss 0.50, 12 steps", "loss 0.53, 12 steps") and not outputs.same("12 steps", "12 epochs")
    nb = {"cells": [{"cell_type": "code", "id": "a", "source": ["print(1)"], "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "1\n"}]}]}
    assert outputs.differences(nb, nb) == []
    assert outputs.differences(nb, {"cells": [{**nb["cells"][0], "outputs": []}]})

SLOW_NBS = [p for p in NBS if "slow" in _flags_in(p)]

if SLOW_NBS:  # only notebooks that have `slow` cells get a second, slow item
    @pytest.mark.slow
    @pytest.mark.parametrize("nb", SLOW_NBS, ids=[p.stem + "-slow" for p in SLOW_NBS])
    def test_notebook_slow(nb, monkeypatch):
        _run(nb, [f for f in FLAGS if f != "slow"], monkeypatch)
