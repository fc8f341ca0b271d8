"""Every notebook is a test item: its cells run top to bottom as `nbdev-test` runs them, honouring the
`tst_flags` of `pyproject.toml`. `pytest -k world` runs one notebook; cells flagged `slow` run only in the
`slow` items (`pytest --slow`)."""
import json
from pathlib import Path

import pytest
import nbdev.test as nbt          # not `from nbdev.test import test_nb`: pytest would collect it
from nbdev.config import get_config

CFG = get_config()
NBS = sorted(p for p in Path(CFG.nbs_path).glob("*.ipynb") if not p.name.startswith("_"))
FLAGS = list(CFG.tst_flags) if not isinstance(CFG.tst_flags, str) else CFG.tst_flags.split()

def _flags_in(nb: Path) -> set[str]:
    "The test flags used by a notebook's cells (`#| slow`)."
    cells = json.loads(nb.read_text())["cells"]
    return {f for c in cells if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if line.startswith("#|")
            for f in line[2:].split() if f in FLAGS}

def _run(nb: Path, skip_flags: list[str], monkeypatch):
    monkeypatch.chdir(nb.parent)  # nbdev-test runs each notebook from nbs/
    ok, secs = nbt.test_nb(nb, skip_flags=skip_flags, basepath=CFG.config_path)
    assert ok, f"{nb.name} failed (see the cell error above)"

@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, monkeypatch):
    _run(nb, FLAGS, monkeypatch)

SLOW_NBS = [p for p in NBS if "slow" in _flags_in(p)]

if SLOW_NBS:  # only notebooks that have `slow` cells get a second, slow item
    @pytest.mark.slow
    @pytest.mark.parametrize("nb", SLOW_NBS, ids=[p.stem + "-slow" for p in SLOW_NBS])
    def test_notebook_slow(nb, monkeypatch):
        _run(nb, [f for f in FLAGS if f != "slow"], monkeypatch)
