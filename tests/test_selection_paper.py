"""Checkpoint selection on the paper's own curves (issue 18, item 3): the digitised curves ship with the package, the
paper's rule (`rule='both'`) picks the paper's checkpoints on them, and the default rule still gives the committed micro
gallery's choice."""
import glob, shutil, subprocess, sys, zipfile
from pathlib import Path

import pandas as pd
import pytest

from crosscoding_time.checkpoints import PAPER_CHECKPOINTS
from crosscoding_time.selection import PAPER_CURVES, paper_curves, select_checkpoints

ROOT = Path(__file__).parents[1]

def paper_picks(family):
    "The paper's four crosscoded checkpoints, named as on its plot grid (`main` is step143000; OLMo's 287B is extra)."
    return [{"main": "step143000"}.get(r, r) for r in PAPER_CHECKPOINTS[family] if r != "step137000-tokens287B"]

@pytest.mark.parametrize("family", PAPER_CURVES)
def test_paper_rule_picks_the_papers_checkpoints(family):
    acc, sim = paper_curves(family)
    assert acc.source.str.startswith(("read", "filled")).all()
    chosen = select_checkpoints(acc, sim, rule="both")
    assert chosen.revision.tolist() == paper_picks(family)
    assert chosen.reason.str.len().gt(20).all()
    assert select_checkpoints(acc, sim).revision.tolist() != paper_picks(family)   # the accuracy rule does not

@pytest.mark.parametrize("family", ["micro-pythia", "micro-olmo", "micro-bloom"])
def test_default_rule_gives_the_committed_micro_choice(family):
    out = ROOT / "figures" / "micro"
    acc, sim = pd.read_csv(out / f"accuracy_{family}.csv"), pd.read_csv(out / f"similarity_{family}.csv")
    chosen, committed = select_checkpoints(acc, sim, fallback=True), pd.read_csv(out / f"selection_{family}.csv")
    pd.testing.assert_frame_equal(chosen[["role", "revision", "reason"]], committed[["role", "revision", "reason"]])

def test_wheel_ships_the_digitised_curves(tmp_path):
    src = tmp_path / "src"                            # a copy: building in place would leave build/ in the checkout
    shutil.copytree(ROOT / "crosscoding_time", src / "crosscoding_time", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"): shutil.copy(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w",
                    str(tmp_path)], check=True, cwd=tmp_path)
    names = zipfile.ZipFile(glob.glob(str(tmp_path / "*.whl"))[0]).namelist()
    assert {f"crosscoding_time/data/paper_similarity_{f}.csv" for f in PAPER_CURVES} | {
        "crosscoding_time/data/paper_selection_accuracy.csv"} <= set(names)
