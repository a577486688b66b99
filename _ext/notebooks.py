"""Publish every chapter as an executed notebook that reads well in Jupyter and Colab.

The chapters are MyST Markdown notebooks (``book/*.md``) written for Sphinx. Readers who
press Colab, Binder or "download .ipynb" get a Jupyter notebook instead, so for every page
that is a notebook this extension

1. takes the notebook the build executed (``_build/jupyter_execute/<page>.ipynb``; in
   ``cache`` mode its outputs come from the execution cache),
2. converts its Markdown for Jupyter (:mod:`myst_to_jupyter`, :mod:`jupyter_render`): glued
   numbers become their values, references become the site's numbers, theorems and
   exercises become block quotes, citations become the site's author-year labels with a
   References cell, the TeX macros are expanded; a construct it cannot convert is a build
   warning (an error under ``-W``),
3. points its install cell at the repository named in ``_config.yml`` (``repository.url``,
   the one place the repository's address is kept): any ``git+https://...`` address in
   a code cell that installs ``kexue-helpers`` is replaced by ``git+<repository.url>``,
4. writes it to ``<site>/notebooks/<page>.ipynb`` (published with the site, on the
   ``gh-pages`` branch) and to ``<site>/_sources/<page>.ipynb`` (the theme's "download
   .ipynb" button), once the whole site is written (it needs every page's numbers),
5. points the Colab button at that published copy
   (``https://colab.research.google.com/github/<org>/<repo>/blob/<kexue_pages_branch>/notebooks/<page>.ipynb``)
   and the Binder button at the same copy, pulled into the Binder session by nbgitpuller
   from the pages branch (the environment still comes from ``binder/`` on the source
   branch).

Configuration (``sphinx.config`` in ``_config.yml``): ``kexue_pages_branch`` (default
``gh-pages``), the branch GitHub Pages publishes the site from.
"""

from __future__ import annotations

import re
from urllib.parse import quote
from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

from jupyter_render import SiteIndex  # local module beside this one

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
    """Point the page's download and Colab buttons at the published notebook.

    The notebook itself is written when the whole site is built (:func:`write_notebooks`):
    its Markdown needs every page's numbers and the bibliography.
    """
    if doctree is None or not _is_notebook(app, pagename):
        return
    context["ipynb_source"] = f"{pagename}.ipynb"
    repo = _repo(app)
    if not repo:
        return
    _, org, name = repo
    branch = app.config.kexue_pages_branch
    launch = app.config.html_theme_options.get("launch_buttons", {})
    colab = launch.get("colab_url", "").rstrip("/")
    binder = launch.get("binderhub_url", "").rstrip("/")
    source_branch = app.config.html_theme_options.get("repository_branch") or "main"
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab" and colab:
                button["url"] = (f"{colab}/github/{org}/{name}/blob/{branch}/"
                                 f"{NOTEBOOKS_DIR}/{pagename}.ipynb")
            if button.get("text") == "Binder" and binder:
                button["url"] = binder_url(binder, repo[0], org, name, source_branch,
                                           branch, pagename)


def binder_url(binderhub: str, repo_url: str, org: str, name: str, source_branch: str,
               pages_branch: str, pagename: str) -> str:
    """A Binder link that opens the published notebook of ``pagename`` in JupyterLab.

    Binder builds the environment from ``source_branch`` (``binder/``); nbgitpuller then
    pulls the ``pages_branch`` (the published site) and JupyterLab opens
    ``notebooks/<pagename>.ipynb`` from it: the same converted, executed notebook as Colab.
    """
    lab_path = f"lab/tree/{name}/{NOTEBOOKS_DIR}/{pagename}.ipynb"
    pull = (f"git-pull?repo={quote(repo_url, safe='')}&branch={quote(pages_branch, safe='')}"
            f"&urlpath={quote(lab_path, safe='')}")
    return (f"{binderhub.rstrip('/')}/v2/gh/{org}/{name}/{quote(source_branch, safe='')}"
            f"?urlpath={quote(pull, safe='')}")


def write_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Write every chapter's executed notebook, converted for Jupyter, into the site."""
    if exception is not None or app.builder.format != "html":
        return
    from jupyter_render import render_notebook

    outdir = Path(app.outdir)
    site = SiteIndex(app)
    repo = _repo(app)
    # every notebook page, also those an incremental build did not rewrite
    for pagename in sorted(d for d in app.env.found_docs if _is_notebook(app, d)):
        executed = outdir.parent / "jupyter_execute" / f"{pagename}.ipynb"
        if not executed.exists():
            LOGGER.warning(f"no executed notebook for {pagename} at {executed}",
                           type="kexue", subtype="notebooks")
            continue
        nb = _with_outputs(app, nbformat.read(executed, as_version=4))
        if repo:
            point_install_cell(nb, repo[0])
        try:
            nb = render_notebook(nb, site.resolver(pagename), site_title=app.config.html_title or app.config.project)
        except ValueError as exc:
            LOGGER.warning(f"{pagename}: cannot convert the notebook for Jupyter: {exc}",
                           type="kexue", subtype="notebooks")
            continue
        for target in (outdir / NOTEBOOKS_DIR / f"{pagename}.ipynb",
                       outdir / "_sources" / f"{pagename}.ipynb"):
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("kexue_pages_branch", "gh-pages", "html")
    # after sphinx-book-theme's add_launch_buttons (priority 501), before the page is written
    app.connect("html-page-context", publish_notebook, priority=502)
    app.connect("build-finished", write_notebooks)
    return {"version": "0.2", "parallel_read_safe": True, "parallel_write_safe": False}
