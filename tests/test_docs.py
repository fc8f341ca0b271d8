"""The documentation (issue 7): the site configuration that `nbdev-docs` needs (Quarto itself cannot be installed
here, so the site is not built), and every notebook run top to bottom in a real Jupyter kernel and rendered to
markdown, as a reader of the docs would get it."""
import json, os
from pathlib import Path

import pytest
import yaml
from nbdev.config import get_config

CFG = get_config()
NBS = Path(CFG.nbs_path)
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))

def test_site_configuration():
    "Quarto's project file, nbdev's metadata and the sidebar: every chapter is listed, the index is the landing page."
    quarto = yaml.safe_load((NBS / "_quarto.yml").read_text())
    assert quarto["project"]["type"] == "website" and "sidebar.yml" in quarto["metadata-files"]
    assert (NBS / quarto["format"]["html"]["css"]).exists()
    meta = yaml.safe_load((NBS / "nbdev.yml").read_text())
    assert meta["website"]["title"] == CFG.lib_name
    contents = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    assert contents[0] == "index.ipynb"
    assert sorted(contents) == sorted(p.name for p in NOTEBOOKS), "regenerate nbs/sidebar.yml with nbdev-sidebar"

def _runnable(nb):
    "The notebook as a reader runs it: cells marked `#| eval: false` (hub downloads, paper scale) are left out."
    keep = []
    for c in nb.cells:
        flags = [l[2:].strip() for l in c.source.splitlines() if l.startswith("#|")]
        if c.cell_type == "code" and any(f.replace(" ", "") == "eval:false" for f in flags): continue
        keep.append(c)
    nb.cells = keep
    return nb

@pytest.mark.docs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_jupyter_kernel(path, monkeypatch):
    "Run a notebook top to bottom in a real `python3` kernel (nbclient), then render it to markdown (nbconvert)."
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter
    monkeypatch.setenv("IN_TEST", "1")
    nb = _runnable(nbformat.read(path, as_version=4))
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(NBS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    md, _ = MarkdownExporter().from_notebook_node(nb)
    title = nb.cells[0].source.splitlines()[0]
    assert title.startswith("# ") and not title.startswith("# #"), f"{path.name}: the first cell must be '# Title', got {title!r}"
    assert title in md and len(md) > 1000
