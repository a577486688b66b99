"""The published notebooks read as Markdown in Jupyter and Colab (issue 15).

Unit tests of the MyST -> Jupyter Markdown converter (``_ext/myst_to_jupyter.py``), and,
when a site has been built, a check of every published notebook for leftover MyST syntax.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

from myst_to_jupyter import (  # noqa: E402
    MystSyntaxError,
    Resolver,
    convert_markdown,
    expand_macros,
    leftover_myst,
    typeset_number,
)

MACROS = {"E": r"\mathbb{E}", "R": r"\mathbb{R}", "P": r"\mathbb{P}"}


def _resolver(**kw) -> Resolver:
    base = dict(
        glue={"n": {"text/plain": "720"}, "x": {"text/plain": "0.0001234"},
              "s": {"text/plain": "'fits'"}, "fig": {"image/png": "iVBORw0KGgo="}},
        equations={"eq-a": "3", "eq-b": "4"},
        targets={"thm-a": "Theorem 2", "fig-a": "Fig. 5", "ex-a": "Exercise 1",
                 "sec-a": "The lemma"},
        blocks=[("theorem", "Theorem 2"), ("exercise", "Exercise 1")],
        citations={"su2021": "Su, 2021a", "halko2011": "Halko et al., 2011"},
        references={"su2021": "Su J. The JL lemma. 2021.", "halko2011": "Halko N. et al. 2011."},
        docs={"book/jl_theory": "The JL lemma: theory"},
        macros=MACROS,
        docdir="book",
    )
    base.update(kw)
    return Resolver(**base)


def test_glue_roles_become_their_formatted_values():
    res = _resolver()
    out = convert_markdown("n = {glue:text}`n`, x = {glue:text}`x:.2e`, {glue:text}`s`.", res)
    assert out == r"n = 720, x = $1.23 \times 10^{-4}$, fits."


def test_typeset_number():
    assert typeset_number("2.0e-15") == r"$2.0 \times 10^{-15}$"
    assert typeset_number("1e+03") == r"$1 \times 10^{3}$"
    assert typeset_number("0.25") == "0.25"


def test_references_take_the_site_numbers():
    res = _resolver()
    src = "By {eq}`eq-a`, {prf:ref}`thm-a`, {numref}`fig-a` and {ref}`sec-a`."
    assert convert_markdown(src, res) == "By (3), Theorem 2, Fig. 5 and The lemma."


def test_labelled_equation_gets_its_tag_and_macros_expand():
    res = _resolver()
    src = "(sec-a)=\n## Title\n\n$$\n\\P(X) \\le \\E[X]\n$$ (eq-b)\n\nText $\\R^n$."
    out = convert_markdown(src, res)
    assert "(sec-a)=" not in out
    assert "\\mathbb{P}(X) \\le \\mathbb{E}[X] \\tag{4}" in out
    assert "$\\mathbb{R}^n$" in out
    assert leftover_myst(out, MACROS) == []


def test_theorem_proof_exercise_solution():
    res = _resolver()
    src = ("```{prf:theorem} Lemma of JL\n:label: thm-a\n\nFor every $x$.\n```\n\n"
           "```{prf:proof}\nObvious.\n```\n\n"
           "```{exercise}\n:label: ex-a\n\nProve it.\n```\n\n"
           "```{solution} ex-a\n:class: dropdown\n\nLike this.\n```")
    out = convert_markdown(src, res)
    assert "> **Theorem 2** (Lemma of JL). For every $x$." in out
    assert "> *Proof.* Obvious. $\\blacksquare$" in out
    assert "> **Exercise 1**." in out
    assert "<summary>Solution to Exercise 1</summary>" in out
    assert leftover_myst(out, MACROS) == []


def test_doc_roles_are_relative_to_the_page():
    res = _resolver()
    assert convert_markdown("See {doc}`jl_theory` and {doc}`/book/jl_theory`.", res) == \
        "See *The JL lemma: theory* and *The JL lemma: theory*."
    assert convert_markdown("{doc}`the theory <jl_theory>`", res) == "*the theory*"


def test_citations_are_author_year_and_recorded():
    res = _resolver()
    out = convert_markdown("See {cite}`su2021,halko2011`.", res)
    assert out == "See [Su, 2021a; Halko et al., 2011]."
    assert res.cited == ["su2021", "halko2011"]


def test_code_is_left_alone():
    res = _resolver()
    src = "Call `{glue:text}` and `\\E` like this:\n\n```python\nx = r'{eq}`a`'\n```"
    out = convert_markdown(src, res)
    assert "```python\nx = r'{eq}`a`'\n```" in out
    assert "`{glue:text}` and `\\E`" in out


def test_unknown_pieces_fail_loudly():
    res = _resolver()
    with pytest.raises(MystSyntaxError, match="unknown directive"):
        convert_markdown("```{margin}\nx\n```", res)
    with pytest.raises(MystSyntaxError, match="glue key 'nope'"):
        convert_markdown("{glue:text}`nope`", res)
    with pytest.raises(MystSyntaxError, match="equation 'eq-z'"):
        convert_markdown("{eq}`eq-z`", res)
    res = _resolver(blocks=[("theorem", "Theorem 2")])
    with pytest.raises(MystSyntaxError, match="more 'theorem' blocks"):
        convert_markdown("```{prf:theorem}\na\n```\n\n```{prf:theorem}\nb\n```", res)


def test_leftover_check_catches_raw_myst():
    raw = "{glue:text}`a`\n\n```{prf:proof}\nx\n```\n\n(lab)=\n\n$$ x $$ (eq-a)\n\n$\\E$"
    found = leftover_myst(raw, MACROS)
    kinds = {f.split(":")[0] for f in found}
    assert {"a MyST role", "a MyST directive fence", "a label line", "an equation label",
            "undefined macro \\E"} <= kinds


def test_expand_macros_respects_longer_names():
    assert expand_macros(r"\E \Exp \E_x", {"E": r"\mathbb{E}"}) == r"\mathbb{E} \Exp \mathbb{E}_x"


SITE = Path(os.environ.get("KEXUE_SITE", ROOT / "_build" / "html"))
REQUIRED = os.environ.get("KEXUE_BROWSER_REQUIRED") == "1"


def _chapters() -> list[str]:
    """Every page of the toc that is a notebook (declares a kernel), e.g. ``book/hsic``."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    out = []
    for f in files:
        path = ROOT / f"{f}.md"
        if path.exists() and "kernelspec:" in path.read_text(encoding="utf-8")[:2000]:
            out.append(f)
    return out


@pytest.mark.parametrize("page", _chapters())
def test_published_notebook_has_no_myst_left(page):
    path = SITE / "notebooks" / f"{page}.ipynb"
    if not path.exists():
        if REQUIRED:
            pytest.fail(f"{path} is missing (KEXUE_BROWSER_REQUIRED=1): build the site")
        pytest.skip("no built site with published notebooks")
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"])
        problems += [f"cell {k}: {p}" for p in leftover_myst(src, MACROS)]
        for name in cell.get("attachments", {}):
            assert f"attachment:{name}" in src
    assert not problems, "\n".join(problems[:20])
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not any(k.startswith("application/papermill") or k.startswith("application/vnd.kexue")
                   for o in outputs for k in o.get("data", {})), "build-only outputs left"
    download = SITE / "_sources" / f"{page}.ipynb"
    assert download.read_bytes() == path.read_bytes(), "download copy differs from Colab's"
