"""Train one small crosscoder on toy activations; run with `python` or under `torchrun` (see test_ddp.py)."""
import atexit, os, sys
from pathlib import Path

import torch

from crosscoding_time.crosscoder import CrossCoderConfig, synthetic_acts
from crosscoding_time.training import TrainConfig, train_crosscoder

class ToySource:
    "Global batch `step` is a seeded function of (seed, step), the same in every process."
    def __init__(self):
        self.acts = synthetic_acts(8192, n_ckpt=3, d_model=16, n_true=32, seed=1)
        self.n_ckpt, self.d_model, self.scales = 3, 16, torch.tensor([1.0, 0.5, 2.0])
        self.revisions, self.hook, self.family = ("a", "b", "c"), "blocks.1.hook_resid_pre", "toy"
    def batches(self, batch_size, seed, start_step=0):
        step = start_step
        while True:
            g = torch.Generator().manual_seed(seed * 100_003 + step)
            yield self.acts[torch.randint(len(self.acts), (batch_size,), generator=g)]
            step += 1

def no_gloo_threads_left():
    """Runs after `init_distributed`'s `_leave_group` (atexit is last in, first out): the group's worker threads
    must be gone by then, or one may free its work while the interpreter shuts down and abort (06_training)."""
    tasks = Path("/proc/self/task")
    if not tasks.exists(): return                                  # not Linux: nothing to look at
    left = [n for t in tasks.iterdir() if (n := (t / "comm").read_text().strip()).startswith("pt_gloo")]
    if left: print(f"gloo threads still alive at exit: {left}", file=sys.stderr, flush=True); os._exit(3)

if __name__ == "__main__":
    torch.set_num_threads(1)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1: atexit.register(no_gloo_threads_left)
    cfg = CrossCoderConfig(n_ckpt=3, d_model=16, d_dict=64, l1_coeff=0.05, seed=3)
    train = TrainConfig(lr=2e-3, batch_size=128, n_tokens=128 * 60, save_every=1000, log_every=20,
                        sparse_below=1.0 if sys.argv[2:] == ["sparse"] else 0.0)   # the sparse step at every step, or
                                                                                   # the dense autograd step throughout
    train_crosscoder(cfg, ToySource(), train, Path(sys.argv[1]), progress=False)
