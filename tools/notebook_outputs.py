"""The notebooks' committed outputs: refresh them all, or check that they are there and stable.

    python tools/notebook_outputs.py refresh [NAME ...]   # execute the notebooks (as `nbdev-test` does) and store their outputs
    python tools/notebook_outputs.py check                # every code cell that prints has its output committed

Outputs are stored normalised, so that a re-execution on another machine reproduces them: progress bars and other
stderr streams are dropped (they hold timings); memory addresses, temporary paths, rates, durations, memory sizes and
package versions are masked ('…'); figures are kept at the notebooks' modest resolution. A cell whose output is expected to change from run to run
(a timing, a benchmark table) says so with the directive `#| volatile`: its output is stored but never compared.
`tests/test_notebooks.py` executes every notebook and compares what it prints with what is committed: the same
words, and numbers within 1 % (or 1e-3)."""
import json, os, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
_ADDR = re.compile(r"0x[0-9a-fA-F]{6,}")
_TMP = re.compile(r"(/private)?/(tmp|var/folders)/[^\s'\"\)\],]*")
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_HOME = re.compile(re.escape(str(ROOT)) + r"[^\s'\"\)\],]*")

def volatile(cell: dict) -> bool:
    "Whether a cell declares its output volatile (`#| volatile`)."
    return any(l.strip().startswith("#|") and "volatile" in l.split() for l in "".join(cell["source"]).splitlines())

def _artifact_root() -> str:
    "The artifact cache the notebooks write to: `$CTT_HOME`, else the package's default."
    return os.environ.get("CTT_HOME") or str(Path.home() / ".cache" / "crosscoding_time")

def _clean_text(s: str) -> str:
    s = s.replace(_artifact_root(), "$CTT_HOME")   # the reader's cache is theirs, wherever it is
    s = _ADDR.sub("0x…", s)
    s = _HOME.sub(lambda m: "<project>" + m.group(0)[len(str(ROOT)):], s)
    return _TMP.sub("<tmp>", s)

def normalise(outputs: list, mask: bool = True) -> list:
    "What of a cell's outputs is stored: no stderr, no addresses or temporary paths; with `mask`, no timings either."
    clean = (lambda t: _untimed(_clean_text(t))) if mask else _clean_text
    out = []
    for o in outputs:
        o = dict(o)
        if o.get("output_type") == "stream":
            if o.get("name") != "stdout": continue
            o["text"] = clean("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
        elif o.get("output_type") in ("execute_result", "display_data"):
            data = dict(o.get("data", {}))
            for k in list(data):
                if k == "text/plain" or k == "text/html" or k == "text/markdown":
                    v = data[k]; data[k] = clean("".join(v) if isinstance(v, list) else v)
                elif k.startswith("application/vnd.jupyter.widget"): del data[k]   # tqdm widgets: nothing to keep
            if not data: continue
            o["data"] = data
            o.pop("execution_count", None)
            if o["output_type"] == "execute_result": o["execution_count"] = None
        elif o.get("output_type") == "error": continue
        out.append(o)
    return out

def printed(outputs: list) -> str:
    "The text a cell shows: stdout and the plain-text results (figures are compared by presence only)."
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream": parts.append(o["text"])
        elif "data" in o:
            d = o["data"]
            parts.append(d.get("text/plain", "") if "image/png" not in d else "<figure>")
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)

_RATE = re.compile(r"[-+]?[\d,]*\.?\d+(?:[eE][-+]?\d+)?(\s?)((?:tokens|rows|pairs|steps|it|GFLOP|TFLOP|FLOP|batches|seqs)/s)")
_TIME = re.compile(r"[-+]?[\d,]*\.?\d+(\s?)(s|ms|µs|us|min|sec|seconds)\b")
_MEM = re.compile(r"[-+]?[\d,]*\.?\d+(\s?)(MiB|MB|GiB|KiB|kB)\b")
_VER = re.compile(r"""(['"]?(?:torch|transformers|transformer_lens|numpy|crosscoding_time|python)['"]?\s*[:=]\s*)(['"]?)[\w.+-]+['"]?""")

def _untimed(s: str) -> str:
    "Rates, durations, memory sizes and package versions are the machine's, not the notebook's: masked with '…'."
    s = _RATE.sub(r"…\1\2", s)
    s = _TIME.sub(r"…\1\2", s)
    s = _MEM.sub(r"…\1\2", s)
    return _VER.sub(r"\1\2…\2", s)

def same(a: str, b: str, rel: float = 0.01, abs_: float = 1e-3) -> bool:
    "The same words, and numbers within `rel` (or `abs_`) of each other; rates, durations and memory sizes aside."
    a, b = _untimed(a), _untimed(b)
    na, nb = _NUM.findall(a), _NUM.findall(b)
    if _NUM.sub("#", a) != _NUM.sub("#", b) or len(na) != len(nb): return False
    return all(abs(float(x) - float(y)) <= max(abs_, rel * max(abs(float(x)), abs(float(y)))) for x, y in zip(na, nb))

def differences(committed: dict, executed: dict) -> list[str]:
    "Cells whose executed output differs from the committed one (volatile cells excepted)."
    bad, by_id = [], {c.get("id"): c for c in executed["cells"]}
    for c in committed["cells"]:
        if c["cell_type"] != "code" or volatile(c): continue
        e = by_id.get(c.get("id"))
        if e is None: bad.append(f"cell {c.get('id')}: not executed"); continue
        a, b = printed(c.get("outputs", [])), printed(normalise(e.get("outputs", [])))
        if not same(a, b):
            ua, ub = _untimed(a), _untimed(b)
            i = next((k for k, (x, y) in enumerate(zip(ua, ub)) if x != y), min(len(ua), len(ub)))
            bad.append(f"cell {c.get('id')}: committed …{ua[max(0, i - 80):i + 120]!r}…, executed …{ub[max(0, i - 80):i + 120]!r}…")
    return bad

def missing(nb: dict) -> int:
    "Code cells with no committed output at all: a notebook committed unexecuted has every one of them."
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return sum(1 for c in code if not c.get("outputs")) if code and not any(c.get("outputs") for c in code) else 0

def refresh(names: list[str]) -> None:
    import nbdev.test as nbt
    from nbdev.config import get_config
    cfg = get_config()
    flags = list(cfg.tst_flags) if not isinstance(cfg.tst_flags, str) else cfg.tst_flags.split()
    nbs = [NBS / f"{n}.ipynb" for n in names] if names else sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
    for nb in nbs:
        print(f"executing {nb.name}", flush=True)
        ok, secs = nbt.test_nb(nb, skip_flags=flags, basepath=cfg.config_path, save=True)
        if not ok: sys.exit(f"{nb.name} failed; its outputs were not stored")
        d = json.loads(nb.read_text())
        for c in d["cells"]:
            if c["cell_type"] == "code":
                c["outputs"] = normalise(c.get("outputs", []), mask=not volatile(c)); c["execution_count"] = None
        nb.write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
        print(f"  {nb.name}: {secs:.0f} s", flush=True)
    import subprocess
    subprocess.run(["nbdev-clean"], cwd=ROOT, check=True)

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:] or ["check"]
    if cmd == "refresh": refresh(rest)
    elif cmd == "check":
        bad = [p.name for p in sorted(NBS.glob("*.ipynb")) if not p.name.startswith("_") and missing(json.loads(p.read_text()))]
        if bad: sys.exit(f"committed without outputs: {', '.join(bad)}: run `python tools/notebook_outputs.py refresh`")
        print("every notebook has its outputs")
    else: sys.exit(__doc__)
