"""pytest options: `--slow` also runs the end-to-end micro reproduction (tests marked `slow`, and notebook
cells flagged `slow`); `--docs` runs every notebook in a real Jupyter kernel (tests marked `docs`); `--gpu` runs the
tests marked `gpu` (the shrunk paper presets end to end on CUDA), which need a CUDA device."""
import pytest

def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="run slow tests and notebook cells flagged `slow` (the end-to-end micro reproduction)")
    parser.addoption("--docs", action="store_true", default=False,
                     help="run every notebook in a real Jupyter kernel and render it to markdown (about 8 minutes)")
    parser.addoption("--gpu", action="store_true", default=False,
                     help="run the tests marked `gpu` (the shrunk paper presets end to end on CUDA); needs a CUDA device")

def pytest_collection_modifyitems(config, items):
    for flag in ("slow", "docs"):
        if config.getoption(f"--{flag}"): continue
        skip = pytest.mark.skip(reason=f"{flag}: run with --{flag}")
        for item in items:
            if flag in item.keywords: item.add_marker(skip)
    import torch
    why = ("gpu: run with --gpu" if not config.getoption("--gpu") else
           None if torch.cuda.is_available() else "gpu: --gpu given, but torch sees no CUDA device")
    if why:
        for item in items:
            if "gpu" in item.keywords: item.add_marker(pytest.mark.skip(reason=why))
