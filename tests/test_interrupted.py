"""`ctt figures --preset tiny` stopped at every stage and run twice at once on one cache (issue 23): the run that
finishes writes the same tables, byte for byte, as one uninterrupted run."""
import os, shutil, signal, subprocess, sys, threading, time
from pathlib import Path

import pytest

CTT = [sys.executable, "-c", "import sys; from crosscoding_time.reproduce import main; sys.exit(main(sys.argv[1:]))"]
GIVE_UP = 1800          # seconds: a hung run fails the test instead of hanging CI (never a timed check)

class Run:
    "One `ctt figures --preset tiny` in a subprocess, its stdout and stderr (tqdm's bars too) read as they come."
    def __init__(self, home: Path, out: Path, *args: str):
        env = {**os.environ, "CTT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.p = subprocess.Popen([*CTT, "figures", "--preset", "tiny", "--out", str(out), *args], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # a background
        # job's children start with Ctrl-C ignored (POSIX shells do that), and Python then installs no handler
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True); self.reader.start()

    def _read(self):
        while chunk := os.read(self.p.stdout.fileno(), 65536): self.chunks.append(chunk)

    @property
    def text(self) -> str: return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, *marks: str) -> bool:
        "Wait until `marks` have appeared in this order; False if the run ended first."
        give_up = time.monotonic() + GIVE_UP
        while time.monotonic() < give_up:
            pos, t = 0, self.text
            for m in marks:
                pos = t.find(m, pos)
                if pos < 0: break
            else: return True
            if self.p.poll() is not None:
                self.reader.join(10); return False
            time.sleep(0.05)
        return False

    def finish(self) -> int:
        rc = self.p.wait(GIVE_UP); self.reader.join(30)
        return rc

    def tail(self) -> str: return self.text.replace("\r", "\n")[-4000:]

def tables(out: Path) -> dict[str, bytes]:
    "Every CSV a run wrote under `out` (annotations too), but the machine-specific timings.csv and no hidden file."
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))
            if p.name != "timings.csv" and not any(part.startswith(".") for part in p.relative_to(out).parts)}

def differ(got: dict[str, bytes], want: dict[str, bytes]) -> list[str]:
    return sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))

@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    "One uninterrupted tiny run per test session: its cache (`home`) and its tables."
    d = tmp_path_factory.mktemp("tiny_reference")
    t = time.monotonic()
    r = Run(d / "home", d / "figures")
    assert r.finish() == 0, r.tail()
    want = tables(d / "figures" / "tiny")
    assert len(want) > 30, sorted(want)
    print(f"\nuninterrupted tiny run: {time.monotonic() - t:.0f} s")
    return dict(home=d / "home", tables=want)

# (marks to wait for, in order; seconds more; signal). Each run of the chain is stopped at the next point, so every
# stage is interrupted once while it computes, alternately by Ctrl-C and SIGKILL, and the next run resumes it.
# '<family>: checkpoints chosen' is printed by every run; the progress bars only while their stage computes.
KILLS = [
    (("pretraining 10 micro models",), 5.0, "SIGKILL"),                        # the pretraining workers
    (("micro-bloom: checkpoints chosen", "crosscoder l1"), 0.5, "SIGINT"),      # micro-bloom's crosscoders
    (("micro-bloom: checkpoints chosen", "crosscoder batchtopk 3x64"), 0.5, "SIGKILL"),
    (("micro-bloom: checkpoints chosen", "IE multiblimp"), 0.5, "SIGINT"),      # multilingual: IE
    (("share x richness: ",), 3.0, "SIGKILL"),                                  # multilingual: the factorial runs
    (("activations micro-pythia",), 0.5, "SIGINT"),                             # similarity
    (("micro-pythia: checkpoints chosen", "crosscoder batchtopk"), 0.5, "SIGKILL"),   # crosscoders
    (("micro-pythia: checkpoints chosen", "IE irregular_plural"), 0.5, "SIGINT"),     # relie
    (("micro-pythia: checkpoints chosen", "latent activations"), 1.0, "SIGKILL"),     # features
]

@pytest.mark.slow
def test_interrupted_at_every_stage(tmp_path, tiny_reference, capsys):
    "Stopped (Ctrl-C, SIGKILL) once in every stage, in a chain from an empty cache: the last run's tables are the reference's."
    home, out, t0, log = tmp_path / "home", tmp_path / "figures", time.monotonic(), []
    for marks, wait, sig in KILLS:
        r = Run(home, out)
        reached = r.wait_for(*marks)
        assert reached, f"the run ended before {marks} (exit status {r.p.poll()}):\n{r.tail()}"
        time.sleep(wait)
        os.kill(r.p.pid, getattr(signal, sig))
        rc = r.finish()
        log.append(f"{sig} at {marks[-1]!r}: exit status {rc}")
        if sig == "SIGKILL": assert rc == -signal.SIGKILL, r.tail()
        else:                                                  # Ctrl-C: one line, status 130 (unless it had ended)
            assert rc == 130, r.tail()
            said = [l for l in r.text.splitlines() if l.startswith("ctt figures: interrupted; every finished step is kept")]
            assert len(said) == 1 and "Traceback" not in r.text, r.tail()   # one line (a progress bar may close after it)
    r = Run(home, out)
    assert r.finish() == 0, r.tail()
    got = tables(out / "tiny")
    assert not differ(got, tiny_reference["tables"]), (differ(got, tiny_reference["tables"]), r.tail())
    with capsys.disabled(): print("\n" + "\n".join(log) + f"\n{len(KILLS)} interruptions and the run that finished: "
                                  f"{time.monotonic() - t0:.0f} s")

@pytest.mark.slow
def test_two_runs_at_once(tmp_path, tiny_reference, capsys):
    "Two `ctt figures --force multilingual` on one cache and one output folder: the second waits, both succeed, same tables."
    home, out, t0 = tmp_path / "home", tmp_path / "figures", time.monotonic()
    shutil.copytree(tiny_reference["home"], home)
    a = Run(home, out, "--force", "multilingual")
    assert a.wait_for("preset 'tiny'"), a.tail()               # printed once it holds the lock
    b = Run(home, out, "--force", "multilingual")
    assert b.wait_for("preset 'tiny'"), b.tail()
    assert a.finish() == 0, a.tail()
    assert b.finish() == 0, b.tail()
    assert "another run (pid " in b.text and "waiting for it to finish" in b.text, b.tail()
    assert "IE multiblimp" in b.text, b.tail()                 # forced: the second computed them again, after the first
    got = tables(out / "tiny")
    assert not differ(got, tiny_reference["tables"]), differ(got, tiny_reference["tables"])
    with capsys.disabled(): print(f"\ntwo runs at once: {time.monotonic() - t0:.0f} s")
