"""Unit tests of the site's Sphinx extension _ext/page_assets.py (glued numbers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from docutils import nodes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
page_assets = pytest.importorskip("page_assets")

M = "\u2212"


def _render(text):
    out = page_assets.typeset_number(text)
    if out is None:
        return None
    return "".join(f"^{n.astext()}" if isinstance(n, nodes.superscript) else n.astext()
                   for n in out)


@pytest.mark.parametrize("text, expected", [
    ("2.0e-15", f"2.0\u202f\u00d7\u202f10^{M}15"),
    ("1.8412712108266006e-15", f"1.8412712108266006\u202f\u00d7\u202f10^{M}15"),
    ("-5.93e-03", f"{M}5.93\u202f\u00d7\u202f10^{M}3"),
    ("3.06E+07", "3.06\u202f\u00d7\u202f10^7"),
    ("1e5", "1\u202f\u00d7\u202f10^5"),
    ("0e+00", "0"),
    ("3.0e+00", "3.0"),
    ("-0.25", f"{M}0.25"),
    ("-12", f"{M}12"),
    ("-4.5%", f"{M}4.5%"),
])
def test_numbers_are_typeset(text, expected):
    assert _render(text) == expected


@pytest.mark.parametrize("text", ["12", "0.25", "abc", "e-5", "1e", "2.0e-15 nats",
                                  "inf", "nan", "-", "1-2", "exp-3"])
def test_other_text_is_left_alone(text):
    assert page_assets.typeset_number(text) is None


def test_superscript_is_a_real_superscript_node():
    out = page_assets.typeset_number("2.0e-15")
    assert isinstance(out[-1], nodes.superscript) and out[-1].astext() == f"{M}15"


def test_numbers_in_glued_markdown_are_typeset():
    para = nodes.paragraph()
    para += nodes.Text("error 3.6e-01, gap -0.5, range 1-2, 2021-09, x1e5 and ")
    para += nodes.literal("1e-3", "1e-3")
    page_assets.typeset_numbers_in([para])
    numbers = [n for n in para.findall(nodes.inline) if "glued-number" in n["classes"]]
    assert [_render(n.astext()) if False else n.astext() for n in numbers] == \
        [f"3.6\u202f\u00d7\u202f10{M}1", f"{M}0.5"]
    assert "range 1-2, 2021-09, x1e5 and " in para.astext()
    assert para.findall(nodes.literal).__next__().astext() == "1e-3"
