"""Fix the scripts each page loads, so that every page runs without a JavaScript error.

Found by the browser test (tests/browser/test_site.py), fixed here:

1. Duplicate scripts. With Jupyter Book 1.0 and sphinx-thebe 0.3, sphinx-thebe's inline
   configuration (``const THEBE_JS_URL = ...``) is registered twice (its
   ``env-before-read-docs`` handler runs on each read pass); the second ``const`` is a
   ``SyntaxError`` on every page. Exact duplicates (same file, attributes and inline body)
   are dropped, keeping the first.

2. Widgets and MathJax 3. The widget manager (``@jupyter-widgets/html-manager``) typesets
   widget labels with the MathJax 2 call ``MathJax.Hub.Queue(["Typeset", MathJax.Hub, node])``;
   the site loads MathJax 3, which has no ``Hub`` (a ``TypeError`` per widget). A small
   inline script gives MathJax a ``Hub.Queue`` that typesets the node with MathJax 3 once it
   is ready, both on the configuration object (before MathJax loads) and on MathJax itself
   (through ``startup.ready``).

3. Widget fonts. The widget manager loads its icon fonts from the folder RequireJS thinks
   its module ``@jupyter-widgets/html-manager/dist/libembed-amd`` lives in (by default
   ``<page folder>/@jupyter-widgets/html-manager/dist/``: a 404 per font). A RequireJS
   configuration set before RequireJS loads (the global ``require`` object), and
   ``window.__jupyter_widgets_assets_path__``, point it at the vendored copy in
   ``_static/vendor/jupyter-widgets/``.

4. MathJax everywhere. Sphinx loads MathJax only on pages that have equations, but a
   chapter title with mathematics (``$n > 8.33 \\log N$``) is shown in the navigation of
   every page, raw on the pages without MathJax. The HTML assets policy "always" loads
   MathJax on every page (myst-nb still adds the widget scripts only where widgets are).

And, for issue 14:

5. Glued numbers read like numbers. ``{glue:text}`key:.1e``` pastes ``2.0e-15``: the post-
   transform :class:`TypesetGluedNumbers` rewrites every pasted text that is a number in
   E notation as ``2.0 × 10`` with a superscript ``−15`` (a real minus sign, U+2212), drops
   an exponent of zero (``3.0e+00`` reads ``3.0``) and gives plain negative numbers a
   real minus sign (``-0.25`` reads ``−0.25``). Text that is not a single number (a glued
   word, a sentence) is left alone. Glued Markdown (``glue:md``, tables of results) has
   every such number in it typeset the same way (:func:`typeset_numbers_in`). ``static/kexue.css`` sets pasted text in the body's
   weight (myst-nb's own CSS makes it bold) and keeps a number on one line.

6. No empty header band: pydata-sphinx-theme 0.17 fills its top navbar with a second search
   button unless ``navbar_persistent`` is set (:func:`no_header_search` sets it empty).

9. Search snippets without raw TeX or button labels (``SEARCH_SNIPPETS``).

8. Chinese text (the articles' titles) is marked ``lang="zh"`` (:class:`MarkChinese`) and
   set upright by ``static/kexue.css``; the bibliography style is ``_ext/kexue_bibtex.py``.

7. No console error on a first visit: pydata-sphinx-theme 0.17 reads the initial theme mode
   from ``html_context["default_mode"]``, which sphinx-book-theme leaves empty, so every page
   logged "Got invalid theme mode: . Resetting to auto." until the reader used the theme
   switch. It is set to ``"auto"`` (follow the system) in :func:`fix_scripts`.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

try:  # Sphinx >= 7.1
    from sphinx.builders.html._assets import _JavaScript
except ImportError:  # pragma: no cover
    _JavaScript = None

WIDGETS_DIR = "_static/vendor/jupyter-widgets/"

MATHJAX2_SHIM = """
(function () {
  function whenReady(f) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(f); }
    else { setTimeout(function () { whenReady(f); }, 50); }
  }
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var cmd = arguments[i];
        if (Array.isArray(cmd) && cmd[0] === 'Typeset') {
          (function (node) {
            whenReady(function () {
              if (window.MathJax.typesetPromise) {
                return window.MathJax.typesetPromise(node ? [node] : undefined);
              }
            });
          })(cmd[2]);
        }
      }
    }
  };
  var cfg = window.MathJax = window.MathJax || {};
  cfg.Hub = cfg.Hub || hub;
  cfg.startup = cfg.startup || {};
  var ready = cfg.startup.ready;
  cfg.startup.ready = function () {
    if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
    if (!window.MathJax.Hub) { window.MathJax.Hub = hub; }
  };
})();
""".strip()


# Search results show a snippet of each page, cut from its raw HTML by searchtools.js: it
# carried the article header's button labels ("....pdf") and raw TeX ("\\(\\lambda > 0\\)").
# This wraps Search.htmlToText to drop the page chrome, code cells and display equations
# and to spell inline TeX as text (lambda -> λ, \\frac{a}{b} -> (a)/(b), macros unwrapped).
SEARCH_SNIPPETS = r"""
document.addEventListener('DOMContentLoaded', function () {
  if (typeof Search === 'undefined' || !Search.htmlToText) { return; }
  var MAP = {lambda: 'λ', varepsilon: 'ε', epsilon: 'ε', alpha: 'α', beta: 'β',
    gamma: 'γ', delta: 'δ', theta: 'θ', sigma: 'σ', mu: 'μ', pi: 'π', rho: 'ρ',
    phi: 'φ', psi: 'ψ', omega: 'ω', Sigma: 'Σ', le: '≤', leq: '≤', ge: '≥', geq: '≥',
    ne: '≠', neq: '≠', approx: '≈', to: '→', infty: '∞', cdot: '·', times: '×',
    pm: '±', in: '∈', sum: 'Σ', int: '∫', prod: '∏', sqrt: '√', R: 'ℝ', E: 'E', P: 'P', mid: '|',
    langle: '⟨', rangle: '⟩', left: '', right: '', bigl: '', bigr: '', Bigl: '',
    Bigr: '', big: '', Big: '', mathrm: '', mathbb: '', mathbf: '', operatorname: '',
    text: '', quad: ' ', qquad: ' '};
  function tex(s) {
    s = s.replace(/^\\[(\[]/, '').replace(/\\[)\]]$/, '');
    s = s.replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, '($1)/($2)');
    s = s.replace(/\\([A-Za-z]+)/g, function (m, w) { return Object.prototype.hasOwnProperty.call(MAP, w) ? MAP[w] : w; });
    return s.replace(/\\[,;:! ]/g, ' ').replace(/[{}\\]/g, '').replace(/\s+/g, ' ');
  }
  var original = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    var doc = new DOMParser().parseFromString(htmlString, 'text/html');
    doc.querySelectorAll('.bd-header-article, .header-article-items, .prev-next-area, '
        + 'footer, .d-print-none, .cell_input, .cell_output, div.math, .eqno')
      .forEach(function (el) { el.remove(); });
    doc.querySelectorAll('span.math').forEach(function (el) {
      el.textContent = tex(el.textContent);
    });
    return original(doc.documentElement.outerHTML, anchor);
  };
});
""".strip()


def _filename(script) -> str:
    return str(getattr(script, "filename", script) or "")


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return _filename(script), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def fix_scripts(app: Sphinx, pagename: str, templatename: str,
                context: dict[str, Any], doctree) -> None:
    # pydata-sphinx-theme 0.17 reads the theme mode from html_context["default_mode"];
    # sphinx-book-theme sets none, so a first visit (nothing in localStorage) logs
    # "Got invalid theme mode: . Resetting to auto." on every page.
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique
    if _JavaScript is None:
        return

    names = [_filename(s) for s in scripts]
    if pagename == "search":
        # the template adds searchtools.js after these scripts; this one patches it on
        # DOMContentLoaded, before searchtools' own handler runs the query
        scripts.append(_JavaScript("", body=SEARCH_SNIPPETS))
        names.append("")
    mathjax = next((i for i, n in enumerate(names) if "mathjax" in n.lower()
                    and n.endswith(".js")), None)
    if mathjax is not None:
        # same priority as MathJax's script, just before it (Sphinx then sorts stably)
        scripts.insert(mathjax, _JavaScript("", priority=scripts[mathjax].priority,
                                            body=MATHJAX2_SHIM))
        names.insert(mathjax, "")
    embed = next((i for i, n in enumerate(names) if n.endswith("require.js")
                  or n.endswith("embed-amd.js")), None)
    if embed is not None:
        rel = context["pathto"](WIDGETS_DIR, 1)
        body = (f"(function () {{ var dir = new URL({rel!r}, document.baseURI).href;"
                " window.__jupyter_widgets_assets_path__ = dir;"
                " if (typeof window.require !== 'function') { window.require ="
                " { paths: { '@jupyter-widgets/html-manager/dist': dir.replace(/\\/$/, '') } }; }"
                " })();")
        scripts.insert(embed, _JavaScript("", priority=scripts[embed].priority, body=body))


MINUS = "\u2212"
TIMES = "\u202f\u00d7\u202f"  # narrow no-break spaces around the times sign
_E_NUMBER = re.compile(r"^([-+]?)(\d+(?:\.\d*)?|\.\d+)[eE]([-+]?)(\d+)$")
_PLAIN_NEGATIVE = re.compile(r"^-(\d+(?:\.\d*)?|\.\d+)(%?)$")


def typeset_number(text: str) -> list[nodes.Node] | None:
    """Nodes that typeset ``text`` as a number, or None if it is not one we rewrite.

    ``"2.0e-15"`` gives ``["2.0 × 10", superscript("−15")]``; ``"-0.25"`` gives
    ``["−0.25"]``; ``"3.0e+00"`` gives ``["3.0"]``; ``"12"`` and ``"abc"`` give None.
    """
    stripped = text.strip()
    m = _E_NUMBER.match(stripped)
    if m:
        sign, mantissa, exp_sign, digits = m.groups()
        lead = (MINUS if sign == "-" else "") + mantissa
        exponent = int(digits)
        if exponent == 0:
            return [nodes.Text(lead)]
        power = (MINUS if exp_sign == "-" else "") + str(exponent)
        return [nodes.Text(lead + TIMES + "10"), nodes.superscript(power, power)]
    m = _PLAIN_NEGATIVE.match(stripped)
    if m:
        return [nodes.Text(MINUS + m.group(1) + m.group(2))]
    return None


_NUMBER_TOKEN = re.compile(
    r"(?<![\w.\-])(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+|-(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?![\w.])")
_NO_NUMBERS = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw,
               nodes.comment, nodes.FixedTextElement, nodes.reference)


def typeset_numbers_in(tree: list[nodes.Node]) -> None:
    """Typeset every number in E notation (and every negative number) in the text of
    ``tree`` (glued Markdown: a table of results), as :func:`typeset_number` does."""
    for root in tree:
        if not isinstance(root, nodes.Element):
            continue
        for text in list(root.findall(nodes.Text)):
            parent = text.parent
            if parent is None or isinstance(parent, _NO_NUMBERS) or any(
                    isinstance(a, _NO_NUMBERS) for a in _ancestors(parent)):
                continue
            if "glued-number" in parent.get("classes", []):
                continue
            s = str(text)
            pieces: list[nodes.Node] = []
            at = 0
            for m in _NUMBER_TOKEN.finditer(s):
                new = typeset_number(m.group(0))
                if new is None:
                    continue
                if m.start() > at:
                    pieces.append(nodes.Text(s[at:m.start()]))
                number = nodes.inline("", "", classes=["glued-number"])
                number.extend(new)
                pieces.append(number)
                at = m.end()
            if not pieces:
                continue
            if at < len(s):
                pieces.append(nodes.Text(s[at:]))
            index = parent.index(text)
            parent.remove(text)
            for k, node in enumerate(pieces):
                parent.insert(index + k, node)


def _glue_md_typesetting():
    """myst-nb's ``glue:md`` role and directive, with :func:`typeset_numbers_in` applied."""
    from myst_nb.ext.glue.directives import PasteMarkdownDirective
    from myst_nb.ext.glue.roles import PasteMarkdownRole

    class Role(PasteMarkdownRole):
        def run(self):
            result, messages = super().run()
            holder = nodes.inline("", "", *result)  # inline Markdown: bare Text nodes too
            typeset_numbers_in([holder])
            return [holder], messages

    class Directive(PasteMarkdownDirective):
        def run(self):
            result = super().run()
            typeset_numbers_in(result)
            return result

    return Role(), Directive


class TypesetGluedNumbers(SphinxPostTransform):
    """Rewrite glued numbers in E notation as ``m × 10^k`` (see the module docstring)."""

    # after myst-nb has pasted the glued values (ReplacePendingGlueReferences: 5)
    default_priority = 50

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(nodes.inline)):
            if "pasted-text" not in node.get("classes", []):
                continue
            if len(node.children) != 1 or not isinstance(node.children[0], nodes.Text):
                continue
            new = typeset_number(node.astext())
            if new is None:
                continue
            node.children = []
            node.extend(new)
            node["classes"].append("glued-number")


def no_header_search(app: Sphinx, config) -> None:
    """No search button in pydata-sphinx-theme's top navbar (see the module docstring).

    pydata-sphinx-theme 0.17 puts a "search-button-field" in the navbar unless
    ``navbar_persistent`` is set; sphinx-book-theme 1.3 has no other navbar content, so
    every page opened with a 64 px band holding only a second search box (the first is in
    the sidebar, and the article header has a search icon on narrow screens).
    ``static/kexue.css`` hides the then empty header.
    """
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CJK_BREAK = re.compile(r"\s\(|,\s|\.\s|;\s")


def cjk_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each stretch of Chinese in ``text``.

    A stretch runs from a CJK character to the last CJK character that follows it without a
    break (" (", ", ", ". ", "; ") in between, so a title such as
    "让人惊叹的Johnson-Lindenstrauss引理:理论篇" is one stretch, and its English translation
    in parentheses after it is not part of it.
    """
    positions = [m.start() for m in _CJK.finditer(text)]
    runs: list[tuple[int, int]] = []
    for pos in positions:
        if runs and not _CJK_BREAK.search(text, runs[-1][1], pos) and pos - runs[-1][1] <= 40:
            runs[-1] = (runs[-1][0], pos + 1)
        else:
            runs.append((pos, pos + 1))
    return runs


class MarkChinese(SphinxPostTransform):
    """Wrap Chinese text in ``<span lang="zh">`` (the article titles), so browsers pick a
    Chinese font and ``static/kexue.css`` can set it upright inside italic text (CJK fonts
    have no italic; browsers slant them artificially)."""

    default_priority = 60  # after the bibliography (sphinxcontrib-bibtex: 5)
    formats = ("html",)
    _SKIP = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw,
             nodes.comment, nodes.FixedTextElement)

    def run(self, **kwargs: Any) -> None:
        for text in list(self.document.findall(nodes.Text)):
            parent = text.parent
            if parent is None or "language-zh" in parent.get("classes", []):
                continue
            if isinstance(parent, self._SKIP) or any(
                    isinstance(a, self._SKIP) for a in _ancestors(parent)):
                continue
            s = str(text)
            runs = cjk_runs(s)
            if not runs:
                continue
            new: list[nodes.Node] = []
            at = 0
            for start, end in runs:
                if start > at:
                    new.append(nodes.Text(s[at:start]))
                new.append(nodes.inline(s[start:end], s[start:end], classes=["language-zh"]))
                at = end
            if at < len(s):
                new.append(nodes.Text(s[at:]))
            index = parent.index(text)
            parent.remove(text)
            for k, node in enumerate(new):
                parent.insert(index + k, node)


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


#: API pages of modules that may not exist yet in a checkout (being added on another
#: branch): the page says so instead of failing the build on autodoc's import error.
OPTIONAL_API_MODULES = {"book/api/widgets": "kexue_helpers.widgets"}


def guard_optional_api_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    module = OPTIONAL_API_MODULES.get(docname)
    if module is None:
        return
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        source[0] = re.sub(r"```\{eval-rst\}\n\.\. automodule::.*?```",
                           f"*`{module}` is not part of this build yet.*",
                           source[0], flags=re.S)


def setup(app: Sphinx) -> dict[str, Any]:
    # MathJax on every page, not only on pages with equations: a chapter title with
    # mathematics appears in every page's navigation (and search results).
    app.set_html_assets_policy("always")
    app.connect("config-inited", no_header_search, priority=100)
    app.connect("html-page-context", fix_scripts, priority=900)
    app.add_post_transform(TypesetGluedNumbers)
    try:  # glued Markdown (tables of results) gets the same typesetting
        role, directive = _glue_md_typesetting()
        app.add_role_to_domain("glue", "md", role, override=True)
        app.add_directive_to_domain("glue", "md", directive, override=True)
    except ImportError:  # pragma: no cover - myst-nb is always there in this book
        pass
    app.add_post_transform(MarkChinese)
    app.setup_extension("kexue_bibtex")
    app.connect("source-read", guard_optional_api_pages)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
