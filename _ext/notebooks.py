"""Publish every chapter as an executed Jupyter notebook, and point the buttons at it.

The chapters are MyST Markdown notebooks (``book/*.md``). Binder opens them as they are
(its environment installs jupytext, see ``binder/``), but Google Colab and most readers'
"download" expect ``.ipynb``. For every page that is a notebook this extension

1. takes the notebook the build executed (``_build/jupyter_execute/<page>.ipynb``; in
   ``cache`` mode its outputs and widget state come from the execution cache),
2. points its install cell at the repository named in ``_config.yml`` (``repository.url``,
   the one place the repository's address is kept): any ``git+https://...`` address in
   a code cell that installs ``kexue-helpers`` is replaced by ``git+<repository.url>``,
3. writes it to ``<site>/notebooks/<page>.ipynb`` (published with the site, on the
   ``gh-pages`` branch, where Colab opens it) and to ``<site>/_sources/<page>.ipynb``
   (the theme's "download .ipynb" button),
4. rewrites the theme's Colab button to open that published copy:
   ``https://colab.research.google.com/github/<org>/<repo>/blob/<kexue_pages_branch>/notebooks/<page>.ipynb``.

Configuration (``sphinx.config`` in ``_config.yml``): ``kexue_pages_branch`` (default
``gh-pages``), the branch GitHub Pages publishes the site from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
NOTEBOOKS_DIR = "notebooks"
_GIT_URL = re.compile(r"git\+https?://[^\s\"'@#]+")


def _is_notebook(app: Sphinx, pagename: str) -> bool:
    return "kernelspec" in app.env.metadata.get(pagename, {})


def _repo(app: Sphinx) -> tuple[str, str, str] | None:
    """(url, org, repo) from ``repository.url``, or None when it is not a GitHub URL."""
    url = (app.config.html_theme_options.get("repository_url") or "").rstrip("/")
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    return (url, m.group(1), m.group(2)) if m else None


def _has_outputs(nb: nbformat.NotebookNode) -> bool:
    return any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def _with_outputs(app: Sphinx, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its outputs and widget state.

    In ``cache`` execution mode myst-nb writes ``jupyter_execute/<page>.ipynb`` without
    outputs (the executed copy lives in the jupyter-cache); take them from the cache, which
    matches the notebook by its code cells and kernel.
    """
    if _has_outputs(nb):
        return nb
    cfg = getattr(app.env, "mystnb_config", None)
    path = getattr(cfg, "execution_cache_path", None)
    if not path:
        return nb
    if not Path(path).is_absolute() and not Path(path).exists():
        path = Path(app.srcdir) / path
    try:
        from jupyter_cache import get_cache

        _, merged = get_cache(str(path)).merge_match_into_notebook(nb)
    except Exception as exc:  # no cache, no match: publish the notebook without outputs
        LOGGER.info(f"[notebooks] no cached outputs for this notebook ({exc!r})")
        return nb
    return merged


def point_install_cell(nb: nbformat.NotebookNode, repo_url: str) -> int:
    """Make every ``git+https://...`` install address in a code cell ``git+<repo_url>``."""
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and "kexue" in cell.source and "install" in cell.source:
            new, k = _GIT_URL.subn(f"git+{repo_url}", cell.source)
            cell.source, n = new, n + k
    return n


def publish_notebook(app: Sphinx, pagename: str, templatename: str,
                     context: dict[str, Any], doctree) -> None:
    if doctree is None or not _is_notebook(app, pagename):
        return
    outdir = Path(app.outdir)
    executed = outdir.parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.exists():
        LOGGER.warning(f"no executed notebook for {pagename} at {executed}",
                       type="kexue", subtype="notebooks")
        return
    nb = _with_outputs(app, nbformat.read(executed, as_version=4))
    repo = _repo(app)
    if repo:
        point_install_cell(nb, repo[0])
    for target in (outdir / NOTEBOOKS_DIR / f"{pagename}.ipynb",
                   outdir / "_sources" / f"{pagename}.ipynb"):
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    context["ipynb_source"] = f"{pagename}.ipynb"

    if not repo:
        return
    _, org, name = repo
    branch = app.config.kexue_pages_branch
    colab = (app.config.html_theme_options.get("launch_buttons", {})
             .get("colab_url", "").rstrip("/"))
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab" and colab:
                button["url"] = (f"{colab}/github/{org}/{name}/blob/{branch}/"
                                 f"{NOTEBOOKS_DIR}/{pagename}.ipynb")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("kexue_pages_branch", "gh-pages", "html")
    # after sphinx-book-theme's add_launch_buttons (priority 501), before the page is written
    app.connect("html-page-context", publish_notebook, priority=502)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
