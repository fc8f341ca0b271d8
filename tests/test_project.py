"""The project's own configuration: nbdev 3 from pyproject.toml, a hand-written README no command overwrites."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]

def test_settings_ini_is_only_a_pointer():
    lines = [l for l in (ROOT / "settings.ini").read_text().splitlines() if l.strip()]
    assert lines and all(l.startswith("#") for l in lines) and "pyproject.toml" in "".join(lines)

def test_pyproject_has_nbdev_table_and_dev_extra():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["tool"]["nbdev"]["lib_name"] == "crosscoding_time"
    assert "slow" in cfg["tool"]["nbdev"]["tst_flags"] and "notest" in cfg["tool"]["nbdev"]["tst_flags"]
    assert any(d.replace(" ", "").startswith("nbdev>=3.3,<4") for d in cfg["project"]["optional-dependencies"]["dev"])
    assert cfg["project"]["scripts"]["ctt"] == "crosscoding_time.reproduce:main"

def test_nbdev_readme_leaves_the_handwritten_readme_alone(monkeypatch):
    from nbdev.quarto import nbdev_readme
    before = (ROOT / "README.md").read_text()
    monkeypatch.chdir(ROOT)
    nbdev_readme()                       # would need Quarto if it rendered anything
    assert (ROOT / "README.md").read_text() == before
    assert (ROOT / "nbs" / "index.ipynb").exists()   # the docs landing page is still there

def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block == ['pip install -e . && ctt figures', 'pip install -e ".[dev]" && pytest']
