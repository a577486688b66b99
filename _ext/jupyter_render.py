"""The site's numbers and labels, and the notebook a Jupyter or Colab reader gets.

:class:`SiteIndex` reads what the built HTML shows (equation, figure, theorem and exercise
numbers, citation labels) together with the Sphinx environment (which label names which
element, the bibliography entries, page titles), so that the published notebook shows the
same numbers as the page. :func:`render_notebook` turns an executed chapter notebook into
the published one with :mod:`myst_to_jupyter`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from myst_to_jupyter import GLUE_PREFIX, MystSyntaxError, Resolver, convert_markdown

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# kexue_helpers.widgets: the precomputed frames of a widget, for the site's player only
_EXPLORABLE = "application/vnd.kexue.explorable+json"
_HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}


class SiteIndex:
    """Numbers, labels and references of the built site, page by page."""

    def __init__(self, app) -> None:
        from bs4 import BeautifulSoup

        self._soup = BeautifulSoup
        self.app = app
        self.outdir = Path(app.outdir)
        env = app.env
        self.docs = {name: title.astext() for name, title in env.titles.items()}
        self.std_labels = env.domaindata.get("std", {}).get("labels", {})
        math = env.get_domain("math")
        self.equation_docs = {label: doc for label, (doc, *_rest) in
                              getattr(math, "equations", {}).items()}
        self.macros = {name: (value if isinstance(value, str) else value[0])
                       for name, value in (app.config.mathjax3_config or {})
                       .get("tex", {}).get("macros", {}).items()}
        self.cite_ids, self.references = {}, {}
        try:
            domain = env.get_domain("cite")
            for citation in domain.citations:
                self.cite_ids.setdefault(citation.key, citation.citation_id)
                self.references.setdefault(
                    citation.key, citation.formatted_entry.text.render_as("text"))
        except Exception:  # no sphinxcontrib-bibtex: no citations to resolve
            pass
        self._pages: dict[str, object] = {}

    def _page(self, pagename: str):
        if pagename not in self._pages:
            path = self.outdir / f"{pagename}.html"
            html = path.read_text(encoding="utf-8") if path.exists() else ""
            self._pages[pagename] = self._soup(html, "html.parser")
        return self._pages[pagename]

    def _caption_numbers(self, soup) -> dict:
        """element id -> the number text it shows, e.g. ``"Fig. 3"``, ``"Theorem 4"``."""
        shown = {}
        for span in soup.select("span.caption-number"):
            owner = span.find_parent(id=True)
            text = span.get_text().strip()
            if owner is not None and re.search(r"\d", text):
                shown.setdefault(owner["id"], text.rstrip(":. "))
        return shown

    def _bibliography_entries(self) -> dict:
        """citation id -> (label, reference) as the bibliography page lists them.

        Read from the bibliography page rather than from the citing page: an incremental
        build may leave a chapter's HTML with the citation ids of an earlier build.
        """
        if not hasattr(self, "_entries"):
            self._entries = {}
            for path in sorted(self.outdir.rglob("*.html")):
                rel = path.relative_to(self.outdir).with_suffix("").as_posix()
                if rel.startswith(("_", "notebooks/")):
                    continue
                if 'role="doc-biblioentry"' not in path.read_text(encoding="utf-8"):
                    continue
                for div in self._page(rel).select("div.citation[id]"):
                    label = div.select_one("span.label")
                    body = div.find("p")
                    if label is None or body is None:
                        continue
                    text = label.get_text().strip().removeprefix("[").removesuffix("]")
                    self._entries.setdefault(div["id"], (text.strip(), " ".join(
                        body.get_text().split())))
        return self._entries

    @staticmethod
    def _equations(soup) -> dict:
        """equation label -> the number the page shows for it, e.g. ``"12"``."""
        found = {}
        for div in soup.select("[id^='equation-']"):
            eqno = div.select_one(".eqno")
            if eqno is not None:
                number = eqno.get_text().strip().strip("()#").strip().strip("()")
                found[div["id"][len("equation-"):]] = number
        return found

    def _site_wide(self) -> tuple[dict, dict]:
        """Numbered elements and equations of every page (labels are unique in the book)."""
        if not hasattr(self, "_global"):
            shown, equations = {}, {}
            for path in sorted(self.outdir.rglob("*.html")):
                rel = path.relative_to(self.outdir).with_suffix("").as_posix()
                if rel.startswith(("_", "genindex", "search", "notebooks/")):
                    continue
                soup = self._page(rel)
                for ident, text in self._caption_numbers(soup).items():
                    shown.setdefault(ident, text)
                for label, number in self._equations(soup).items():
                    equations.setdefault(label, number)
            self._global = (shown, equations)
        return self._global

    def resolver(self, pagename: str) -> Resolver:
        """Everything :func:`myst_to_jupyter.convert_markdown` needs for one page.

        Numbers come from the page itself first, then from the rest of the site (a
        reference may point to a theorem or an equation of another chapter).
        """
        soup = self._page(pagename)
        site_shown, site_equations = self._site_wide()
        shown = {**site_shown, **self._caption_numbers(soup)}
        targets = dict(shown)
        for label, (doc, ident, title) in self.std_labels.items():
            if ident in shown:
                targets[label] = shown[ident]
            elif title:
                targets.setdefault(label, title)
        equations = {**site_equations, **self._equations(soup)}
        blocks = []
        for span in soup.select("div.admonition > p.admonition-title > span.caption-number"):
            text = span.get_text().strip()
            if re.search(r"\d", text):
                blocks.append((text.split()[0].lower(), text))
        cite_labels, references = {}, dict(self.references)
        entries = self._bibliography_entries()
        for key, ident in self.cite_ids.items():
            if ident in entries:  # label and reference exactly as the bibliography shows them
                cite_labels[key], references[key] = entries[ident]
        return Resolver(equations=equations, targets=targets, blocks=blocks,
                        citations=cite_labels, references=references,
                        docs=self.docs, macros=self.macros,
                        docdir=pagename.rpartition("/")[0])


def _clean_outputs(cell) -> None:
    """Drop glue records (invisible to Jupyter) and stale widget views."""
    kept = []
    for out in cell.get("outputs", []):
        data = out.get("data")
        if data is not None:
            data = {k: v for k, v in data.items() if not k.startswith(GLUE_PREFIX)}
            data.pop(_EXPLORABLE, None)  # the frames: the default one stays as image/png
            if _WIDGET_VIEW in data and len(data) > 1:
                # the widget's model is not in the notebook: show its static form
                data.pop(_WIDGET_VIEW)
            if not data:
                continue
            out["data"] = data
        kept.append(out)
    cell["outputs"] = kept


def _figure_caption(cell, res: Resolver) -> str | None:
    """The caption of the figure (or widget) a code cell shows, numbered as on the site."""
    figure = (cell.get("metadata", {}).get("mystnb", {}) or {}).get("figure") or {}
    caption, name = figure.get("caption"), figure.get("name")
    for out in cell.get("outputs", []):
        payload = out.get("data", {}).get(_EXPLORABLE)
        if isinstance(payload, dict) and payload.get("caption"):
            caption, name = payload["caption"], payload.get("key")
    if not caption:
        return None
    text = convert_markdown(str(caption).strip(), res)
    number = res.targets.get(name) if name else None
    return f"*{number}.* {text}" if number else text


def render_notebook(nb, res: Resolver, *, site_title: str = "the book"):
    """The published form of an executed chapter notebook.

    Markdown cells are converted for Jupyter; glue records are dropped from the outputs;
    hidden cells (asserts, glue) keep their code, collapsed; each figure's caption follows
    its cell; a note after the title says where the numbers in the text come from; the
    references cited are listed at the end.

    Raises
    ------
    ValueError
        (:class:`myst_to_jupyter.MystSyntaxError`) naming the cell that cannot be converted.
    """
    from myst_to_jupyter import glue_values

    nb = copy.deepcopy(nb)
    res.glue = glue_values(nb)
    cells, noted = [], False
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            res.attachments = {}
            try:
                cell.source = convert_markdown(cell.source, res)
            except MystSyntaxError as exc:
                raise MystSyntaxError(f"markdown cell {k}: {exc}") from None
            if res.attachments:
                cell["attachments"] = res.attachments
            cells.append(cell)
            if not noted and cell.source.lstrip().startswith("# "):
                cells.append(nbformat.v4.new_markdown_cell(
                    f"> **About this notebook.** This is a chapter of *{site_title}*, "
                    "executed when the book was built. Every number in the text was "
                    "computed by the cells below during that build; re-running the cells "
                    "recomputes their outputs (at the scale and on the device you run "
                    "them on) but not the numbers quoted in the text, which stay the "
                    "build's values. Hidden cells hold the checks behind the text: "
                    "expand them to see the code."))
                noted = True
            continue
        if cell.cell_type == "code":
            try:
                caption = _figure_caption(cell, res)
            except MystSyntaxError as exc:
                raise MystSyntaxError(f"figure caption of code cell {k}: {exc}") from None
            _clean_outputs(cell)
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & _HIDDEN_TAGS:
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            cells.append(cell)
            if caption:
                cells.append(nbformat.v4.new_markdown_cell(caption))
            continue
        cells.append(cell)
    if res.cited:
        lines = ["## References", ""]
        for key in res.cited:
            lines.append(f"- [{res.citations[key]}] {res.references.get(key, key)}")
        cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
    nb.cells = cells
    for cell in nb.cells:  # nbformat 4.5 wants unique ids; new cells got fresh ones
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb
