"""House rules every chapter must follow, checked on the MyST sources.

These are static checks; executing the chapters is nbval's job (``pytest --nbval``), and
what the built page looks like is tests/browser/test_site.py's.

The page-quality rules of issue 14 (CONTRACT.md, "How a chapter is written") that can be
read off the source are the ``STATIC_CHECKS`` below; each is run on every chapter, on a
compliant fixture page (tests/fixtures/site/good.md, which must pass them all) and on a
non-compliant one (bad.md, which must fail each for the right reason).
"""

from __future__ import annotations

import ast
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


FIXTURES = ROOT / "tests" / "fixtures" / "site"

MAX_LINE = 79            # columns in a visible code cell
MAX_VISIBLE_LINES = 15   # non-blank lines in a visible code cell
MIN_FONT_PT = 9          # explicit font sizes in figure code
COLUMN_WIDTH_IN = 6.8    # kexue_helpers.plotting.COLUMN_WIDTH
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}

_GLUE_CALL = re.compile(r"(?<![\w.])(?:\w+\.)*glue\(")  # glue(, kh.book.glue(, ...
_PLT_FIGURE = re.compile(r"\bplt\.(?:subplots|figure|subplot|plot|hist|scatter|imshow|bar|"
                         r"semilogy|semilogx|loglog|errorbar|show)\(")
_NAMED_SIZES = {"xx-small": 5.79, "x-small": 6.94, "small": 8.33}  # at font.size 10


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _code_cells(path: Path):
    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


def _where(k: int, cell) -> str:
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return f"code cell {k} ({first[:50]!r})"


def check_glue_only_in_removed_cells(path: Path) -> list[str]:
    """Every ``glue(...)`` call is in a cell tagged ``remove-cell``."""
    cells = _code_cells(path)
    aliases = set(re.findall(r"\bglue\s+as\s+(\w+)", "\n".join(c.source for c in cells)))
    calls = [_GLUE_CALL] + [re.compile(rf"(?<![\w.]){a}\(") for a in aliases]
    return [f"{_where(k, c)}: calls glue() but is not tagged remove-cell"
            for k, c in enumerate(cells)
            if any(r.search(c.source) for r in calls) and "remove-cell" not in _tags(c)]


def check_visible_code_is_short_and_narrow(path: Path) -> list[str]:
    """Visible cells: every line <= 79 columns, at most 15 non-blank lines."""
    out = []
    for k, c in enumerate(_code_cells(path)):
        if _tags(c) & HIDDEN:
            continue
        lines = c.source.splitlines()
        for n, line in enumerate(lines, 1):
            if len(line) > MAX_LINE:
                out.append(f"{_where(k, c)} line {n}: {len(line)} columns (at most {MAX_LINE})")
        body = [ln for ln in lines if ln.strip()]
        if len(body) > MAX_VISIBLE_LINES:
            out.append(f"{_where(k, c)}: {len(body)} lines visible (at most "
                       f"{MAX_VISIBLE_LINES}; move set-up and plotting into hide-input cells)")
    return out


def check_no_stray_output(path: Path) -> list[str]:
    """No visible or collapsed cell ends in a bare expression (it would print an Out value).

    Calls are allowed (most return None: ``plt.show()``, ``glue(...)``); names, attributes,
    arithmetic, subscripts, literals and comparisons are not, unless the line ends in ``;``.
    """
    out = []
    for k, c in enumerate(_code_cells(path)):
        if "remove-cell" in _tags(c) or "remove-output" in _tags(c):
            continue
        src = "\n".join(ln for ln in c.source.splitlines()
                        if not ln.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        if not tree.body or not isinstance(tree.body[-1], ast.Expr):
            continue
        last = tree.body[-1]
        if isinstance(last.value, (ast.Call, ast.Await, ast.Yield)):
            continue
        if isinstance(last.value, ast.Constant) and isinstance(last.value.value, str):
            continue  # a docstring-like string statement is unusual, but prints
        text = src.splitlines()[last.end_lineno - 1].rstrip()
        if text.endswith(";"):
            continue
        out.append(f"{_where(k, c)}: ends in the bare expression "
                   f"{ast.unparse(last.value)[:40]!r}, which prints an Out value")
    return out


def check_figures_are_numbered_and_described(path: Path) -> list[str]:
    """Every cell that draws with pyplot (and is not removed) is a hide-input cell with
    mystnb figure metadata: a caption, a name ``fig-...`` and alt text of a few words."""
    out = []
    for k, c in enumerate(_code_cells(path)):
        if "remove-cell" in _tags(c) or "remove-output" in _tags(c):
            continue
        if not _PLT_FIGURE.search(c.source):
            continue
        meta = c.metadata.get("mystnb", {}) or {}
        fig = meta.get("figure", {}) or {}
        image = meta.get("image", {}) or {}
        where = _where(k, c)
        if not str(fig.get("caption", "")).strip():
            out.append(f"{where}: draws a figure without mystnb figure caption")
        if not re.fullmatch(r"fig-[a-z0-9-]+", str(fig.get("name", ""))):
            out.append(f"{where}: figure name {fig.get('name')!r} is not fig-<chapter>-<what>")
        alt = str(image.get("alt", "")).strip()
        if len(alt.split()) < 4:
            out.append(f"{where}: figure alt text {alt!r} does not describe it (image: alt:)")
        if "hide-input" not in _tags(c):
            out.append(f"{where}: a figure cell is tagged hide-input (its code one click away)")
    return out


def check_figure_sizes(path: Path) -> list[str]:
    """Figures drawn at most COLUMN_WIDTH wide, no explicit font under 9 pt."""
    out = []
    for k, c in enumerate(_code_cells(path)):
        if "remove-cell" in _tags(c):
            continue
        for m in re.finditer(r"figsize\s*=\s*\(\s*([0-9.]+)", c.source):
            if float(m.group(1)) > COLUMN_WIDTH_IN + 1e-9:
                out.append(f"{_where(k, c)}: figsize width {m.group(1)} in > COLUMN_WIDTH "
                           f"({COLUMN_WIDTH_IN} in); draw at the size shown")
        for m in re.finditer(r"\b(?:fontsize|labelsize|size)\s*=\s*([0-9.]+|['\"][a-z-]+['\"])",
                             c.source):
            raw = m.group(1).strip("'\"")
            pt = _NAMED_SIZES.get(raw) if not raw[0].isdigit() else float(raw)
            if pt is not None and pt < MIN_FONT_PT:
                out.append(f"{_where(k, c)}: font size {m.group(0)!r} under {MIN_FONT_PT} pt")
    return out


_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")


def _directives(text: str):
    """(name, argument, options, body) of every MyST directive fence in ``text``."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = _FENCE.match(line.strip())
        if not m:
            continue
        fence = m.group("fence")
        options, body, j = {}, [], i + 1
        while j < len(lines) and lines[j].strip().startswith(":") and \
                not lines[j].strip().startswith(fence[0] * 3):
            om = re.match(r"^:(\w[\w-]*):\s*(.*)$", lines[j].strip())
            if om:
                options[om.group(1)] = om.group(2)
            j += 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j])
            j += 1
        found.append((m.group("name"), m.group("arg").strip(), options, "\n".join(body)))
    return found


def check_exercises_have_solutions(path: Path) -> list[str]:
    """Every exercise has a collapsed solution (``{solution} <label>``, ``:class: dropdown``)
    or a collapsed hint (a ``{hint}`` with ``:class: dropdown`` inside the exercise)."""
    text = path.read_text(encoding="utf-8")
    found = _directives(text)
    solved = {arg: "dropdown" in opts.get("class", "") for name, arg, opts, _ in found
              if name == "solution"}
    out = []
    for name, _, opts, body in found:
        if name != "exercise":
            continue
        label = opts.get("label", "")
        hints = [o for n, _, o, _ in _directives(body) if n == "hint"]
        if not label:
            out.append("an exercise has no :label: (a solution cannot refer to it)")
        elif label in solved:
            if not solved[label]:
                out.append(f"the solution to {label} is not collapsed (:class: dropdown)")
        elif hints:
            if not any("dropdown" in o.get("class", "") for o in hints):
                out.append(f"the hint to {label} is not collapsed (:class: dropdown)")
        else:
            out.append(f"exercise {label} has no solution and no hint")
    return out


_GLUE_MD_ROLE_LINE = re.compile(r"^\s*\{glue:md\}`[^`]+`\s*$", re.M)


def check_glued_blocks_use_the_directive(path: Path) -> list[str]:
    """A glued Markdown block (a table) on a line of its own uses the ``{glue:md}``
    directive with ``:format: myst``: the inline role renders a table as raw text."""
    _, _, text = _cells(path)
    return [f"{m.group(0).strip()!r} alone on a line: use ```{{glue:md}} <key>``` with "
            f":format: myst (the role is inline and shows a table as raw text)"
            for m in _GLUE_MD_ROLE_LINE.finditer(text)]


STATIC_CHECKS = {
    "glue": check_glue_only_in_removed_cells,
    "code": check_visible_code_is_short_and_narrow,
    "output": check_no_stray_output,
    "figures": check_figures_are_numbered_and_described,
    "figure-size": check_figure_sizes,
    "exercises": check_exercises_have_solutions,
    "glued-blocks": check_glued_blocks_use_the_directive,
}


@pytest.mark.parametrize("check", STATIC_CHECKS)
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_page_quality_in_source(path, check):
    found = STATIC_CHECKS[check](path)
    assert not found, f"{path.name}: {len(found)} {check} problem(s):\n  " + "\n  ".join(found)


def test_static_checks_pass_on_a_compliant_page():
    found = {k: f(FIXTURES / "good.md") for k, f in STATIC_CHECKS.items()}
    assert not any(found.values()), found


@pytest.mark.parametrize("check, expected", [
    ("glue", "calls glue() but is not tagged remove-cell"),
    ("glue", "('raw_glue(\"fx_bad_echo\", 0.125)')"),
    ("code", "columns (at most 79)"),
    ("code", "lines visible"),
    ("output", "ends in the bare expression 'np.float64(0.5) + np.float64(0.25)'"),
    ("figures", "without mystnb figure caption"),
    ("figures", "does not describe it"),
    ("figures", "tagged hide-input"),
    ("figure-size", "figsize width 11 in"),
    ("figure-size", "font size 'fontsize=6' under 9 pt"),
    ("exercises", "exercise fx-ex-bad has no solution and no hint"),
    ("glued-blocks", "alone on a line: use"),
])
def test_static_checks_catch_each_defect(check, expected):
    found = STATIC_CHECKS[check](FIXTURES / "bad.md")
    assert any(expected in m for m in found), f"{check} missed {expected!r}: {found}"


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
    assert re.search(r"\bexplorable\(|widgets\.(interact|interactive)|ipywidgets", src), \
        "needs a widget"
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


def _chapter_links() -> set[tuple[str, str]]:
    """(referenced, referencing) pairs: chapter B links chapter A with {doc}, or refers to
    one of A's labels ({eq}, {prf:ref}, {numref}, {ref})."""
    names = {p.stem for p in CHAPTERS}
    owner: dict[str, str] = {}
    for path in CHAPTERS:
        src = path.read_text(encoding="utf-8")
        for label in re.findall(r"^:label: ([\w-]+)$|^\$\$ \(([\w-]+)\)$|^\(([\w-]+)\)=$|"
                                r"^:name: ([\w-]+)$|^:\s+name: ([\w-]+)$", src, flags=re.M):
            owner[next(x for x in label if x)] = path.stem
    links = set()
    for path in CHAPTERS:
        src = path.read_text(encoding="utf-8")
        for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([\w./-]+)>?`", src):
            stem = Path(target).name
            if stem in names and stem != path.stem:
                links.add((stem, path.stem))
        for label in re.findall(r"\{(?:eq|prf:ref|numref|ref)\}`(?:[^`<]*<)?([\w-]+)>?`", src):
            if owner.get(label, path.stem) != path.stem:
                links.add((owner[label], path.stem))
    return links


def test_intro_chapter_map_shows_the_links_the_chapters_make():
    """Every arrow of the chapter map in book/intro.md (data-from -> data-to) is a link the
    chapters make, and every link between chapters is an arrow; every node is a link."""
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    arrows = set(re.findall(r'data-from="([\w]+)" data-to="([\w]+)"', intro))
    assert arrows == _chapter_links(), (
        f"map arrows not made by the chapters: {arrows - _chapter_links()}; "
        f"links missing from the map: {_chapter_links() - arrows}")
    nodes = set(re.findall(r'<a href="([\w]+)\.html">', intro))
    assert nodes == {p.stem for p in CHAPTERS}, nodes


def test_api_reference_has_one_page_per_module():
    """book/api/<module>.md documents kexue_helpers.<module>, for every module, and each
    page is in the table of contents."""
    import yaml

    modules = {p.stem for p in (ROOT / "kexue_helpers").glob("*.py") if p.stem != "__init__"}
    pages = {p.stem: p.read_text(encoding="utf-8") for p in (ROOT / "book" / "api").glob("*.md")
             if p.stem != "index"}
    missing = modules - set(pages)
    assert not missing, f"modules without an API page: {sorted(missing)}"
    for stem, text in pages.items():
        assert f".. automodule:: kexue_helpers.{stem}\n" in text, f"book/api/{stem}.md"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))

    def files(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for v in node.values():
                yield from files(v)
        elif isinstance(node, list):
            for v in node:
                yield from files(v)

    listed = set(files(toc))
    assert {f"book/api/{stem}" for stem in pages} <= listed, sorted(listed)
