"""The paper presets' real code path, end to end and offline (issue 7): random-weight models of the real
architectures, shrunk to two layers, in a Hugging Face cache with one ref per hub revision; the tasks and the text as
local files in the published formats (BLiMP .jsonl, MultiBLiMP data.tsv, JSON lines); `HF_HUB_OFFLINE=1`."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from crosscoding_time.reproduce import PAPER_PRESETS, offline_hub_twins, shrink
from crosscoding_time.checkpoints import PAPER_CHECKPOINTS
from crosscoding_time.tasks import BLIMP_SV_TASKS, CLAMS_TASKS, to_prefix_answer_words
from crosscoding_time.world import (World, WorldConfig, MultiWorldConfig, LANGS, grammar_for, doc_text, make_task,
                                    make_multiblimp, phenomena_of, atomic_write_text)

_RUN = """
import contextlib, sys
from pathlib import Path
from crosscoding_time.reproduce import PAPER_PRESETS, PaperData, run_paper, shrink
from crosscoding_time.checkpoints import PAPER_CHECKPOINTS
name, out, home, data, device = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5] or None
p = shrink(PAPER_PRESETS[name], grid=PAPER_CHECKPOINTS[name])
local = {k: str(data / k) for k in ("blimp", "multiblimp", "clams") if (data / k).is_dir()}   # what this preset's tasks need
if (data / "wikitext.parquet").is_file(): local["wikitext"] = str(data / "wikitext.parquet")
ctx = contextlib.nullcontext()
if device == "lazy":                      # a second device on the CPU (tests/second_device.py)
    sys.path.insert(0, sys.argv[6]); from second_device import lazy_device; ctx = lazy_device()
with ctx: run_paper(p, out, home, PaperData(**local, text=str(data / "text.jsonl"), val_text=str(data / "val.jsonl")), progress=False, device=device)
"""

def _offline_data(name: str, tmp: Path) -> Path:
    "The tasks, the text and a tokenizer from the micro world, in the published formats; the twins in a hub cache."
    multi = name == "bloom-1b1"
    world = (World.build(MultiWorldConfig(), vocab_size=2048, n_sentences=20_000) if multi else
             World.build(WorldConfig(), vocab_size=512, n_sentences=3000))
    data = tmp / "data"
    g = grammar_for(world.config, seed=3)
    docs = [doc_text(g.document())[0] for _ in range(300)]
    atomic_write_text(data / "text.jsonl", "".join(json.dumps(dict(text=d)) + "\n" for d in docs))
    held = grammar_for(world.config, seed=4)          # the validation split: other documents, as the Pile's val.jsonl.zst
    atomic_write_text(data / "val.jsonl", "".join(json.dumps(dict(text=doc_text(held.document())[0])) + "\n" for _ in range(300)))
    if multi:
        for lang in LANGS:
            rows = [r for ph in phenomena_of(lang, world.config.rich(lang))
                    for r in make_multiblimp(lang, ph, 16, seed=1, config=world.config)]
            (data / "multiblimp" / lang).mkdir(parents=True)
            pd.DataFrame(rows).to_csv(data / "multiblimp" / lang / "data.tsv", sep="\t", index=False)
        for i, task in enumerate(CLAMS_TASKS):       # CLAMS as the reference ships it: {lang}_{task}.jsonl, processed rows
            for lang, src in (("en", "eng"), ("fr", "fra")):
                pairs = [(r["sen"], r["wrong_sen"]) for r in make_multiblimp(src, "SV-#", 12, seed=10 + i, config=world.config)]
                rows = [dict(sentence_good=g, sentence_bad=b, **dict(zip(("clean_prefix", "clean_answer", "patch_answer"),
                                                                         to_prefix_answer_words(g, b))), skip=False)
                        for g, b in pairs if not isinstance(to_prefix_answer_words(g, b), str)]
                atomic_write_text(data / "clams" / f"{lang}_{task}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        # WikiText-2 in the hub's published format (a parquet `text` column, one row per line); the check reads its first 10%
        lines = [l for d in docs for l in (d + "\n", "")] * 4
        pd.DataFrame(dict(text=lines)).to_parquet(data / "wikitext.parquet")
    else:
        for t in BLIMP_SV_TASKS:
            atomic_write_text(data / "blimp" / f"{t}.jsonl", "".join(json.dumps(r) + "\n" for r in make_task(t, 24, seed=1)))
    p = shrink(PAPER_PRESETS[name], grid=PAPER_CHECKPOINTS[name])
    offline_hub_twins(p, tmp / "hub", tokenizer=world.tokenizer)
    return data

def _env(tmp: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_CACHE": str(tmp / "hub"), "HF_HOME": str(tmp / "hf")}

def _run(name: str, tmp: Path, device: str = "") -> Path:
    "Run the shrunk preset `name` offline in a subprocess on `device` ('': `local_device()`, CUDA where there is one)."
    data = tmp / "data" if (tmp / "data").is_dir() else _offline_data(name, tmp)
    env = _env(tmp)
    r = subprocess.run([sys.executable, "-c", _RUN, name, str(tmp / "figures"), str(tmp / "home"), str(data), device,
                        str(Path(__file__).parent)],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert f"paper preset {name!r}" in r.stdout                      # the plan and its cost come first
    (tmp / "stdout.txt").write_text(r.stdout)
    assert f"every stage on {device or ('cuda' if torch.cuda.is_available() else 'cpu')}" in r.stdout, r.stdout[-3000:]
    return tmp / "figures" / name

_SHARD = """
import sys
from pathlib import Path
from crosscoding_time.reproduce import PAPER_PRESETS, PaperData, run_shard, shrink, parse_shard
from crosscoding_time.checkpoints import PAPER_CHECKPOINTS
name, home, data, shard = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
p = shrink(PAPER_PRESETS[name], grid=PAPER_CHECKPOINTS[name])
local = {k: str(data / k) for k in ("blimp", "multiblimp") if (data / k).is_dir()}
print(run_shard(p, parse_shard(shard), home, PaperData(**local, text=str(data / "text.jsonl"), val_text=str(data / "val.jsonl")), progress=False))
"""

def _check_common(out: Path, name: str):
    p = PAPER_PRESETS[name]
    acc = pd.read_csv(out / f"accuracy_{name}.csv")
    assert list(dict.fromkeys(acc.revision)) == list(PAPER_CHECKPOINTS[name]) and acc.accuracy.between(0, 1).all()
    assert (out / f"accuracy_{name}.png").stat().st_size > 5000 and (out / f"similarity_{name}.png").exists()
    stats = pd.read_csv(out / "crosscoder_stats.csv")
    assert len(stats) == len(p.comparisons) * len(p.kinds)         # every comparison x kind (one seed when shrunk)
    assert set(stats.revisions) == {" ".join(c) for c in p.comparisons} and stats.ev.notna().all()
    assert (out / "crosscoder_stats.md").read_text().count("\n") == 2 + len(p.comparisons)
    assert len(list(out.glob(f"relie_vs_reldec_{name}_*.png"))) == sum(len(c) == 2 for c in p.comparisons)
    assert list((out / "annotations").glob("*.csv"))
    # Table 7: one row per 2-way comparison x subtask, the latents it ranks beside it
    tasks = {t for t in pd.read_csv(out / f"accuracy_{name}.csv").task}
    two = [c for c in p.comparisons if len(c) == 2]
    tab = pd.read_csv(out / f"ablation_table_{name}.csv")
    assert len(tab) == len(two) * len(tasks) and set(tab.task) == tasks
    assert {"rho_reldec", "rho_relie", "n_latents"} <= set(tab.columns) and (tab.n_latents > 0).any()
    assert (out / f"ablation_table_{name}.md").read_text().startswith("| Comparison |")
    assert len(pd.read_csv(out / f"ablation_latents_{name}.csv")) == tab.n_latents.sum()
    ev = pd.read_csv(out / f"ie_evolution_{name}.csv")                # top/bottom-5 across the triplet
    assert len(ev) > 0 and ev.filter(like="ie_").shape[1] == 3 and (out / f"ie_evolution_{name}.png").stat().st_size > 5000
    cards = pd.read_csv(out / f"cards_{name}.csv")                      # cards of the triplet's top latents, LM text
    assert len(cards) > 0 and all((out / c).stat().st_size > 1000 for c in cards.card)
    assert len(list((out / "cards" / name).glob("*.html"))) == len(cards)
    marked = [r for r in PAPER_CHECKPOINTS[name]]                      # every crosscoder checkpoint scored, so marked
    assert set(marked) <= set(acc.revision)
    report = (out / "REPORT.md").read_text()                            # every paper output listed, with its files
    assert "**missing**" not in report and "Table 7" in report and f"ie_evolution_{name}.png" in report
    import re
    for f in re.findall(r"\]\(([^)]+)\)", report): assert (out / f).exists(), f

def test_pythia_1b_offline_end_to_end(tmp_path):
    out = _run("pythia-1b", tmp_path)
    _check_common(out, "pythia-1b")
    p = PAPER_PRESETS["pythia-1b"]                                   # issue 19: a comparison's runs from one pass
    assert (tmp_path / "stdout.txt").read_text().count("2 crosscoders in lockstep on one source, 1 shuffle seed\n") == len(p.comparisons)
    run = next((tmp_path / "home" / "paper" / "pythia-1b").iterdir())  # the text tokenised once, the scales kept
    assert list((run / "tokens" / "train").glob("tokens_*.npy")) and list((run / "tokens" / "validation").glob("*.npy"))
    assert len(list((run / "scales").glob("*.json"))) == len(p.comparisons)
    assert (out / "relie_3d_top10_pythia-1b.png").exists() and (out / "relie_3d_top100_pythia-1b.csv").exists()
    ann = pd.read_csv(next((out / "annotations").glob("latents_pythia-1b_step512_step2000_main_subjectverb_*.csv")))
    assert {"feat_id", "ie_value_A", "ie_value_C", "comparison"} <= set(ann.columns)

@pytest.mark.slow   # the default suite runs one preset (Pythia); CI runs all three (--slow)
def test_olmo_1b_0724_offline_end_to_end(tmp_path):
    out = _run("olmo-1b-0724", tmp_path)
    _check_common(out, "olmo-1b-0724")                            # 5 checkpoints, the paper's 6 comparisons
    assert (out / "relie_3d_top10_olmo-1b-0724.png").exists()

@pytest.mark.slow
def test_bloom_1b1_offline_end_to_end(tmp_path):
    out = _run("bloom-1b1", tmp_path)
    _check_common(out, "bloom-1b1")
    acc = pd.read_csv(out / "accuracy_bloom-1b1.csv")
    assert {t.split("_")[1] for t in acc.task} == set(LANGS)
    assert len(list(out.glob("overlap_*_top10_bloom-1b1.png"))) == 3   # SV-#, SV-G, SV-P
    two = [c for c in PAPER_PRESETS["bloom-1b1"].comparisons if len(c) == 2]
    for c in two:                                                        # §7.3's 2-way variant, per phenomenon and k
        ov = pd.read_csv(out / f"overlap_2way_SV-num_top10_bloom-1b1_{'_'.join(c)}.csv")
        assert set(ov.lang_a) == set(LANGS) and (ov.n_a <= 20).all() and (ov.overlap <= ov[["n_a", "n_b"]].min(axis=1)).all()
    assert len(list(out.glob("overlap_2way_*_bloom-1b1_*.png"))) == len(two) * 3 * len(PAPER_PRESETS["bloom-1b1"].relie.k)
    assert "CLAMS" in (out / "REPORT.md").read_text()
    # BLOOM's CLAMS check: the 9 revisions of the CLAMS plot, each with its WikiText-2 perplexity and collapse flag
    clams = pd.read_csv(out / "accuracy_clams_bloom-1b1.csv")
    plan = PAPER_PRESETS["bloom-1b1"].clams
    assert list(dict.fromkeys(clams.revision)) == list(plan.grid) and {"global_step400000", "main"} <= set(clams.revision)
    assert clams.groupby("revision").task.nunique().eq(14).all() and clams.accuracy.between(0, 1).all()
    assert (clams.perplexity > 1).all() and clams.collapsed.dtype == bool and (out / "accuracy_clams_bloom-1b1.png").stat().st_size > 5000
    assert not clams.collapsed.any()                     # random-weight twins: none is 100x worse than the others
    for c in PAPER_PRESETS["bloom-1b1"].comparisons:     # the CLAMS 3-way and 2-way annotation tables
        ann = pd.read_csv(out / "annotations" / f"latents_bloom-1b1_{'_'.join(c)}_clams-all-all_topk10.csv")
        assert {"feat_id", "ie_value_A", "ie_value_B"} <= set(ann.columns) and (ann.task_category == "clams").all()
    report = (out / "REPORT.md").read_text()
    assert "accuracy_clams_bloom-1b1.png" in report and "not produced" not in report

@pytest.mark.slow
def test_pythia_1b_on_a_second_device(tmp_path):
    """Every stage on one device that is not the CPU (issue 19): the lazy backend refuses, as CUDA does, any op that
    mixes its tensors with CPU ones, so a tensor left on the CPU (CE tokens, scales, a crosscoder loaded to the CPU)
    fails here as it would on a GPU."""
    out = _run("pythia-1b", tmp_path, "lazy")
    _check_common(out, "pythia-1b")

@pytest.mark.gpu
def test_pythia_1b_on_cuda(tmp_path):
    "The shrunk Pythia preset end to end on CUDA (run with --gpu on a machine with one)."
    out = _run("pythia-1b", tmp_path, "cuda")
    _check_common(out, "pythia-1b")

@pytest.mark.slow
def test_shards_assembled_equal_one_run(tmp_path):
    "`--shard 0/2` and `1/2` train disjoint halves of the crosscoders; a plain run then trains none and writes what one run does."
    from safetensors.torch import load_file
    one, parts = _run("pythia-1b", tmp_path / "one"), tmp_path / "parts"
    data = _offline_data("pythia-1b", parts)
    trained = []
    for shard in ("0/2", "1/2"):
        r = subprocess.run([sys.executable, "-c", _SHARD, "pythia-1b", str(parts / "home"), str(data), shard],
                           capture_output=True, text=True, env=_env(parts), timeout=1200)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
        trained.append(eval(r.stdout.strip().splitlines()[-1]))
    units = len(PAPER_PRESETS["pythia-1b"].comparisons) * 2                 # x kinds, one seed when shrunk
    assert not set(trained[0]) & set(trained[1]) and len(trained[0]) + len(trained[1]) == units
    done = {f: f.stat().st_mtime_ns for f in (parts / "home").rglob("crosscoders/*/final/model.safetensors")}
    assert len(done) == units
    out = _run("pythia-1b", parts)
    assert {f: f.stat().st_mtime_ns for f in done} == done                   # the plain run trained none again
    a, b = pd.read_csv(one / "crosscoder_stats.csv"), pd.read_csv(out / "crosscoder_stats.csv")
    pd.testing.assert_frame_equal(a, b)
    for name in trained[0] + trained[1]:
        wa, wb = [load_file(next((t / "home" / "paper" / "pythia-1b").glob(f"*/crosscoders/{name}/final/*.safetensors")))
                  for t in (tmp_path / "one", parts)]
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
