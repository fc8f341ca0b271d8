"""Feature cards as a reader sees them: a standalone card opened in headless Chromium (issue 5)."""
import html.parser, os, shutil, subprocess, tempfile
from pathlib import Path

import pytest

from crosscoding_time.features import FeatureCard

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
# CI installs Debian's chromium (.ci/run): there a missing browser is a failure, elsewhere a skip
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="no headless Chromium here (CI installs Debian's `chromium`)")

def render(path: Path) -> str:
    "The DOM after Chromium loaded the page and ran whatever it would run."
    assert CHROMIUM, "CI must install chromium (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--dump-dom", path.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "<html" in r.stdout, r.stderr[-2000:]
    return r.stdout

class Reader(html.parser.HTMLParser):
    "What a reader sees: the title, the visible text of each context line, and any element that could run code."
    def __init__(self):
        super().__init__(); self.title, self.lines, self.scripts, self._in, self._stack = "", [], 0, None, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "iframe", "object", "embed") or any(k.startswith("on") for k in a): self.scripts += 1
        if tag == "title": self._in = "title"
        if tag == "div" and a.get("class") == "ctx": self.lines.append(""); self._stack.append("ctx")
        elif tag == "div": self._stack.append("div")
    def handle_endtag(self, tag):
        if tag == "title": self._in = None
        if tag == "div" and self._stack: self._stack.pop()
    def handle_data(self, data):
        if self._in == "title": self.title += data
        elif "ctx" in self._stack: self.lines[-1] += data

@needs_chromium
def test_card_in_headless_chromium(tmp_path):
    evil = "<script>document.title='pwned'</script>"
    card = FeatureCard(
        latent=42, title="micro-pythia <b>test</b>", checkpoints=["1.02M", "2.3M", "8M"],
        decoder_norm=[0.1, 0.5, 1.2], frequency=[0.01, 0.02, 0.03], joint_frequency=0.02,
        contexts={"shared code": [dict(seq=0, pos=2, act=3.5, focus=2, tokens=[" The", " dog", evil, " runs"],
                                       acts=[0.0, 1.0, 3.5, 0.2]),
                                  dict(seq=1, pos=1, act=2.0, focus=1, tokens=[" A", '<img src=x onerror="alert(1)">'],
                                       acts=[0.1, 2.0])],
                  "8M": []},
        ie=[0.0, 0.01, 0.2], relie=[0.0, 0.05, 0.95], task="regular_plural_subject_verb_agreement_1",
        annotation=dict(label="plural subject head", kind="abstract", f1=0.81, auroc=0.953))
    path = card.save(tmp_path / "card.html")
    dom = render(path)
    seen = Reader(); seen.feed(dom)
    assert seen.scripts == 0, dom                                   # nothing executable reached the page
    assert seen.title.startswith("latent 42") and "pwned" not in seen.title
    assert seen.lines[0] == "3.50 The dog" + evil + " runs"         # the token shows as text, as written
    assert seen.lines[1] == '2.00 A<img src=x onerror="alert(1)">'
    assert "plural subject head" in dom and "AUROC 0.953" in dom and "never fires" in dom
    assert "micro-pythia &lt;b&gt;test&lt;/b&gt;" in dom
