"""Train two crosscoders together on a micro family's `ActivationStream`; run with `python` or under `torchrun`
(see test_shared_stream.py). Writes the token batches this process harvested to `<out>/harvested.rank<r>.json`."""
import json, os, sys, hashlib
from dataclasses import replace
from pathlib import Path

import torch

import crosscoding_time.activations as A
from crosscoding_time.activations import ActivationStream, HarvestConfig
from crosscoding_time.crosscoder import CrossCoderConfig
from crosscoding_time.training import TrainConfig, train_together

root, out, parts = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
seen, _harvest = [], A.harvest
def harvest(models, tokens, *a, **k):     # which LM batches this process runs the models on
    seen.append(hashlib.sha256(tokens.numpy().tobytes()).hexdigest()[:16]); return _harvest(models, tokens, *a, **k)
A.harvest = harvest

if __name__ == "__main__":
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    hcfg = HarvestConfig.micro("micro-pythia", ("step4", "step78"), seq_len=32, n_tokens=128 * 40, batch_seqs=4,
                               buffer_mult=8, norm_batches=4)
    src = ActivationStream(hcfg, root)
    seen.clear()                           # the scale estimate runs the same batches everywhere: not the harvest's
    train = TrainConfig(lr=2e-3, batch_size=128, n_tokens=128 * 40, save_every=1000, log_every=20, stream_parts=parts)
    units = [(CrossCoderConfig(n_ckpt=2, d_model=src.d_model, d_dict=64, l1_coeff=0.05, seed=3), train, out / "l1"),
             # a second L1 run on another shuffle seed (BatchTopK picks its top k x batch over each process's rows, so
             # it is not data-parallel-exact; the L1 step is)
             (CrossCoderConfig(n_ckpt=2, d_model=src.d_model, d_dict=64, l1_coeff=0.05, seed=4), replace(train, seed=9),
              out / "l1_s9")]
    train_together(units, src, progress=False)
    (out / f"harvested.rank{rank}.json").write_text(json.dumps(seen))
