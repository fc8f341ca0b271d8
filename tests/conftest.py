"""pytest options: `--slow` also runs the end-to-end micro reproduction (tests marked `slow`, and notebook
cells flagged `slow`); `--docs` runs every notebook in a real Jupyter kernel (tests marked `docs`)."""
import pytest

def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="run slow tests and notebook cells flagged `slow` (the end-to-end micro reproduction)")
    parser.addoption("--docs", action="store_true", default=False,
                     help="run every notebook in a real Jupyter kernel and render it to markdown (about 8 minutes)")

def pytest_collection_modifyitems(config, items):
    for flag in ("slow", "docs"):
        if config.getoption(f"--{flag}"): continue
        skip = pytest.mark.skip(reason=f"{flag}: run with --{flag}")
        for item in items:
            if flag in item.keywords: item.add_marker(skip)
