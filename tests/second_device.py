"""A second device on a CPU-only machine, to test device discipline without a GPU (issue 19): PyTorch's lazy tensor
backend (`lazy`, TorchScript on the CPU). Like CUDA it refuses any op that mixes its tensors with CPU ones, so code
that would fail on a GPU with "Expected all tensors to be on the same device" fails here too."""
import contextlib
import torch

LAZY = torch.device("lazy", 0)

def _slices(x, sizes, dim):
    out, i = [], 0
    for n in sizes: out.append(x.narrow(dim, i, n)); i += n
    return tuple(out)

@contextlib.contextmanager
def lazy_device():
    "The `lazy` device, initialised; within the block its multi-output views (split, chunk, unbind), broken in the lazy "
    "backend (a result reads as a CPU tensor), are computed as the same slices with `narrow`."
    import torch._lazy, torch._lazy.ts_backend
    torch._lazy.ts_backend.init()
    split, chunk, unbind = torch.Tensor.split, torch.Tensor.chunk, torch.Tensor.unbind
    def split_(x, size, dim=0):
        if x.device.type != "lazy": return split(x, size, dim)
        n = x.shape[dim]
        sizes = list(size) if isinstance(size, (list, tuple)) else [min(size, n - i) for i in range(0, n, size)]
        return _slices(x, sizes, dim)
    def chunk_(x, k, dim=0):
        if x.device.type != "lazy": return chunk(x, k, dim)
        return split_(x, -(-x.shape[dim] // k), dim)
    def unbind_(x, dim=0):
        if x.device.type != "lazy": return unbind(x, dim)
        return tuple(x.select(dim, i) for i in range(x.shape[dim]))
    patched = dict(split=split_, chunk=chunk_, unbind=unbind_)
    old = {k: (getattr(torch.Tensor, k), getattr(torch, k)) for k in patched}
    for k, f in patched.items(): setattr(torch.Tensor, k, f); setattr(torch, k, f)
    try: yield LAZY
    finally:
        for k, (t, f) in old.items(): setattr(torch.Tensor, k, t); setattr(torch, k, f)
