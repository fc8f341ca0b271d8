"""Data parallelism: `torchrun --nproc_per_node 2` (gloo, CPU) ends where a single process does at the same
global batch and seed (the recipe of reference `train_crosscoder_revision.py`)."""
import os, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent

def _run(cmd, cwd) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout

@pytest.mark.parametrize("step", ["dense", "sparse"])   # both crosscoder steps of 05_crosscoder
def test_torchrun_matches_single_process(tmp_path, step):
    _run([sys.executable, str(HERE / "ddp_train.py"), str(tmp_path / "single"), step], tmp_path)
    out = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                "29533" if step == "dense" else "29534", str(HERE / "ddp_train.py"), str(tmp_path / "ddp"), step], tmp_path)
    a = load_file(tmp_path / "single" / "final" / "model.safetensors")
    b = load_file(tmp_path / "ddp" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        rel = ((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)).item()
        assert rel < 1e-4, (k, rel)
    assert "2 processes" in out                                   # it really ran data-parallel
    from crosscoding_time.crosscoder import CrossCoder, CrossCoderConfig
    init = CrossCoder(CrossCoderConfig(n_ckpt=3, d_model=16, d_dict=64, seed=3)).W_dec.detach()
    assert ((a["W_dec"] - init).norm() / init.norm()).item() > 1e-2  # and trained: equality is not trivial
