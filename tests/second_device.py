"""A second device on a CPU-only machine, to test device discipline without a GPU (issue 19): PyTorch's lazy tensor
backend (`lazy`, TorchScript on the CPU). Like CUDA it refuses any op that mixes its tensors with CPU ones, so code
that would fail on a GPU with "Expected all tensors to be on the same device" fails here too."""
import contextlib, math
import torch

LAZY = torch.device("lazy", 0)

def _slices(x, sizes, dim):
    out, i = [], 0
    for n in sizes: out.append(x.narrow(dim, i, n)); i += n
    return tuple(out)

@contextlib.contextmanager
def lazy_device():
    """The `lazy` device, initialised. Within the block, two bugs of the lazy backend are worked around for lazy tensors:
    its multi-output views (split, chunk, unbind) return tensors that read as CPU ones, so they are computed as the same
    slices with `narrow`; a Python float multiplied in (or a mean's 1/n) enters the backward graph as a double and
    breaks the matmuls' gradients, so it is made a 0-dim tensor of the operand's dtype (the mean a sum over n)."""
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
    mul, rmul, mean = torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.mean
    def scalar(x, v):                     # a Python float enters the lazy graph as a double: its gradient is one
        return torch.tensor(v, dtype=x.dtype, device=x.device) if isinstance(v, float) and x.device.type == "lazy" else v
    def mean_(x, *a, **k):
        if x.device.type != "lazy" or not x.is_floating_point(): return mean(x, *a, **k)
        dim = a[0] if a else k.get("dim")
        n = x.numel() if dim is None else math.prod(x.shape[i] for i in ([dim] if isinstance(dim, int) else dim))
        return x.sum(*a, **k) / n
    patched = dict(split=split_, chunk=chunk_, unbind=unbind_)
    ops = dict(__mul__=lambda x, v: mul(x, scalar(x, v)), __rmul__=lambda x, v: rmul(x, scalar(x, v)), mean=mean_)
    for k, f in ops.items(): setattr(torch.Tensor, k, f)
    save = torch.save                     # CUDA tensors can be saved; lazy ones have no storage to write: copy them out
    def save_(obj, *a, **k):
        from torch.utils._pytree import tree_map
        return save(tree_map(lambda t: t.cpu() if isinstance(t, torch.Tensor) and t.device.type == "lazy" else t, obj), *a, **k)
    torch.save = save_
    old = {k: (getattr(torch.Tensor, k), getattr(torch, k)) for k in patched}
    for k, f in patched.items(): setattr(torch.Tensor, k, f); setattr(torch, k, f)
    try: yield LAZY
    finally:
        for k, (t, f) in old.items(): setattr(torch.Tensor, k, t); setattr(torch, k, f)
        torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.mean, torch.save = mul, rmul, mean, save
