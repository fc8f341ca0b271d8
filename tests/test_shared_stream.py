"""One pass of forward passes for every crosscoder of a comparison (issue 19, item 3): runs trained together from
one `ActivationStream` equal the same runs trained alone; a run killed mid-pass resumes from the saved pass without
running a model on text already read and ends where an uninterrupted run does; under `torchrun` the ranks harvest
disjoint LM batches and end where one process does."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import crosscoding_time.activations as A
from crosscoding_time.activations import ActivationStream, HarvestConfig
from crosscoding_time.checkpoints import PretrainConfig, MicroModelConfig, pretrain_micro, load_model, micro_family
from crosscoding_time.crosscoder import CrossCoderConfig
from crosscoding_time.training import TrainConfig, train_together, train_crosscoder

HERE = Path(__file__).parent
REVS = ("step4", "step78")

@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("micro")
    pretrain_micro(PretrainConfig(model=MicroModelConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=64), n_tokens=20_000,
                                  batch_size=8, seq_len=32, linear_every=16, warmup_steps=5), root=root, progress=False)
    return root

def _stream(root):
    hcfg = HarvestConfig.micro("micro-pythia", REVS, seq_len=32, n_tokens=128 * 40, batch_seqs=4, buffer_mult=8, norm_batches=4)
    models = [load_model(micro_family("micro-pythia", root), r, root=root) for r in REVS]
    return ActivationStream(hcfg, root, models=models)

def _units(src, out: Path, **train):
    t = TrainConfig(lr=2e-3, batch_size=128, n_tokens=128 * 40, save_every=10, log_every=20, **train)
    return [(CrossCoderConfig(n_ckpt=2, d_model=src.d_model, d_dict=64, l1_coeff=0.05, seed=3), t, out / "l1"),
            (CrossCoderConfig(n_ckpt=2, d_model=src.d_model, d_dict=64, kind="batchtopk", k=4, k_init=16, k_anneal_steps=10,
                               threshold_start_step=5, seed=3, dec_init_norm=1.0),
             t, out / "topk"),
            (CrossCoderConfig(n_ckpt=2, d_model=src.d_model, d_dict=64, l1_coeff=0.05, seed=3), TrainConfig(**{**t.__dict__, "seed": 9}),
             out / "l1_s9")]

def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

class _Count:
    "Counts the LM batches harvested (each runs every checkpoint once); raises `KeyboardInterrupt` at `die_at`."
    def __init__(self, monkeypatch, die_at=None):
        self.n, self.die_at, self._h = 0, die_at, A.harvest
        monkeypatch.setattr(A, "harvest", self)
    def __call__(self, *a, **k):
        if self.die_at is not None and self.n == self.die_at: raise KeyboardInterrupt("killed")
        self.n += 1
        return self._h(*a, **k)

def test_together_equals_alone(root, tmp_path, monkeypatch):
    src = _stream(root)
    count = _Count(monkeypatch)
    together = train_together(_units(src, tmp_path / "together"), src, progress=False)
    one_pass = count.n
    for (c, t, d), cc in zip(_units(src, tmp_path / "alone"), together):
        assert _same(train_crosscoder(c, src, t, d, progress=False), cc), d.name
    assert count.n - one_pass == 3 * one_pass     # alone, each run paid the whole pass again

def test_killed_pass_resumes_without_replay(root, tmp_path, monkeypatch):
    src = _stream(root)
    whole = train_together(_units(src, tmp_path / "whole"), src, progress=False)
    count = _Count(monkeypatch)
    train_together(_units(src, tmp_path / "count"), src, progress=False)
    one_pass, count.n = count.n, 0
    count.die_at = one_pass - 3                    # killed in the last refills, after the saves at steps 10, 20, 30
    with pytest.raises(KeyboardInterrupt): train_together(_units(src, tmp_path / "killed"), src, progress=False)
    assert (tmp_path / "killed" / "l1" / "stream_state.pt").exists()
    saved = A.StreamState.load(tmp_path / "killed" / "l1" / "stream_state.pt")
    count.n, count.die_at = 0, None
    resumed = train_together(_units(src, tmp_path / "killed"), src, progress=False)
    assert all(_same(a, b) for a, b in zip(whole, resumed))
    assert saved.step == 30 and count.n == one_pass - saved.states[0]["lm_batches"]   # none of the read text again
    assert not (tmp_path / "killed" / "l1" / "stream_state.pt").exists()

def _run(cmd, cwd) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout

def test_torchrun_ranks_harvest_disjoint_rows(root, tmp_path):
    script = str(HERE / "shared_stream_train.py")
    _run([sys.executable, script, str(root), str(tmp_path / "single"), "2"], tmp_path)
    out = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
                script, str(root), str(tmp_path / "ddp"), "2"], tmp_path)
    assert "2 processes" in out
    single = json.loads((tmp_path / "single" / "harvested.rank0.json").read_text())
    r0, r1 = (json.loads((tmp_path / "ddp" / f"harvested.rank{r}.json").read_text()) for r in (0, 1))
    assert r0 and r1 and not set(r0) & set(r1)                       # each rank runs the models on its own batches
    assert sorted(r0 + r1) == sorted(single)                         # together, the batches one process runs
    for name in ("l1", "l1_s9"):
        a = load_file(tmp_path / "single" / name / "final" / "model.safetensors")
        b = load_file(tmp_path / "ddp" / name / "final" / "model.safetensors")
        for k in a:
            rel = ((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)).item()
            assert rel < 1e-4, (name, k, rel)
