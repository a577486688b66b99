"""House rules every chapter must follow, checked on the MyST sources.

These are static checks; executing the chapters is nbval's job (``pytest --nbval``).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md")
                  if "kernelspec:" in p.read_text(encoding="utf-8")[:2000])


def _cells(path: Path):
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return nb, code, text


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found in book/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_cites_its_original_article(path):
    _, _, text = _cells(path)
    head = text[:1500]
    assert re.search(r"https://kexue\.fm/archives/\d+", head), \
        "the chapter must link its original article near the top"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_glued_reference_is_glued(path):
    _, code, text = _cells(path)
    referenced = set(re.findall(r"\{glue(?::\w+)?\}`([A-Za-z0-9_]+)", text))
    source = "\n".join(c.source for c in code)
    glued = set(re.findall(r"""glue\(\s*["']([A-Za-z0-9_]+)["']""", source))
    # keys built with f-strings, e.g. glue(f"ed_h{n}", ...): match them as patterns
    patterns = [re.compile(re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(f)) + "$")
                for f in re.findall(r"""glue\(\s*f["']([^"']+)["']""", source)]
    missing = {k for k in referenced - glued if not any(p.match(k) for p in patterns)}
    assert referenced, "the prose must use glued numbers"
    assert not missing, f"glue keys used in the prose but never glued: {missing}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_checks_its_claims_in_hidden_assertion_cells(path):
    _, code, _ = _cells(path)
    hidden = [c for c in code if "remove-cell" in c.metadata.get("tags", [])]
    assert any(re.search(r"^\s*assert\b", c.source, flags=re.M) for c in hidden), \
        "claims must be checked by asserts in cells tagged remove-cell"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_a_widget_theorems_equations_and_exercises(path):
    src = path.read_text(encoding="utf-8")
    assert re.search(r"widgets\.(interact|interactive)|ipywidgets", src), "needs a widget"
    assert re.search(r"```\{prf:(theorem|lemma|proposition|corollary)\}", src), \
        "needs theorem/proof blocks"
    assert re.search(r"^\$\$ \([a-z0-9-]+\)$", src, flags=re.M), "needs numbered equations"
    assert "```{exercise}" in src, "needs exercises"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_seeded_and_scaled(path):
    src = path.read_text(encoding="utf-8")
    assert "seed_everything(" in src, "the chapter must seed its generators"
    assert "kh.scaled(" in src or "scaled(" in src, "experiments must be sized with scaled()"


def test_labels_are_unique_across_chapters():
    seen: dict[str, str] = {}
    for path in CHAPTERS:
        src = path.read_text(encoding="utf-8")
        labels = re.findall(r"^:label: ([\w-]+)$", src, flags=re.M)
        labels += re.findall(r"^\$\$ \(([\w-]+)\)$", src, flags=re.M)
        for label in labels:
            assert label not in seen, f"label {label} in {path.name} also in {seen[label]}"
            seen[label] = path.name
