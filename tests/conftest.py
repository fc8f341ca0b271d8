"""pytest options: `--slow` also runs the end-to-end micro reproduction (tests marked `slow`, and notebook
cells flagged `slow`)."""
import pytest

def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="run slow tests and notebook cells flagged `slow` (the end-to-end micro reproduction)")

def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"): return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)
