"""Turn each ``kexue_helpers.widgets.explorable`` output into a numbered figure with a player.

How it works (see ``kexue_helpers/widgets.py`` for the chapter side):

1. At set-up the extension sets ``KEXUE_WIDGETS=static`` in the build's environment (unless
   it is set already), before myst-nb executes any chapter: the kernels inherit it, so each
   ``explorable(...)`` call draws all its frames and displays one output of MIME type
   ``application/vnd.kexue.explorable+json`` (plus the default frame as ``image/png`` and a
   line of text, which is what Jupyter shows in the executed notebook).

2. A myst-nb MIME renderer (the ``myst_nb.mime_renderers`` plugin protocol, registered here
   in ``load_mime_renders`` rather than through an installed entry point) turns that output,
   while the chapter is read, into a ``figure`` node named after the widget's ``key`` (so
   Sphinx numbers it with the other figures and ``{numref}`key``` works), whose caption is
   parsed as MyST like a figure caption in cell metadata, holding an ``explorable_player``
   node. The frames are written once to ``_build/jupyter_execute/explorable/`` (content
   addressed), and the renderer takes priority over ``image/png`` for the HTML builders.

3. Writing HTML, ``explorable_player`` becomes the default frame as a plain ``<img>`` (with
   the alt text: the static figure seen with JavaScript off), a ``<noscript>`` note, and a
   JSON block naming the frame files, which are copied to ``_widgets/`` in the site. The page
   loads ``_static/widgets/explorable.js`` (about 6 KB), which builds the controls (a
   slider over the value list for numbers, a dropdown for strings, each with a readout),
   fetches the other frames when the reader first points at or focuses the widget, and
   swaps them when a control moves. Pages without widgets load none of it.

4. Live Code: sphinx-thebe asks for Thebe from unpkg.com; pages get the copy vendored in
   ``static/vendor/thebe/`` instead (the ``THEBE_JS_URL`` of its inline configuration is
   rewritten per page), and ``_static/widgets/livecode.js``, which checks that the Binder
   server answers before starting and otherwise says that Live Code needs a connection.

5. Page weight: every page gets ``_static/vendor/fontawesome/fontawesome-subset.css``,
   which redeclares the theme's solid icon font as a subset with only the icons the site
   can show (``scripts/vendor_assets.py``); ``static/scripts/fontawesome.js`` replaces the
   theme's 1.5 MB Font Awesome script with an empty one (its stylesheet draws the icons).

6. Time: each widget's drawing time (CPU seconds, from the output's metadata) is logged,
   and a warning (an error in the strict build) names any chapter whose widgets together
   take more than ``kexue_widgets_max_seconds`` (30) CPU seconds. Keys must be unique in
   the book (a warning names duplicates).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

try:  # Sphinx >= 7.1
    from sphinx.builders.html._assets import _JavaScript
except ImportError:  # pragma: no cover
    _JavaScript = None

logger = logging.getLogger(__name__)

MIME_TYPE = "application/vnd.kexue.explorable+json"
MODE_ENV = "KEXUE_WIDGETS"
OUT_DIR = "_widgets"          # in the built site
EXEC_DIR = "explorable"       # under myst-nb's output folder (_build/jupyter_execute)
THEBE_JS = "_static/vendor/thebe/index.js"  # written by scripts/vendor_assets.py
HTML_BUILDERS = ("html", "dirhtml", "singlehtml", "readthedocs", "readthedocsdirhtml")


class explorable_player(nodes.General, nodes.Element):
    """The player of one explorable: attributes ``key``, ``files`` (one URI per frame, in
    frame order, relative to the source folder with a leading ``/``), ``default``,
    ``controls``, ``alt``, ``width``, ``height``, ``check`` (setting, index, file)."""


# --------------------------------------------------------------------------- reading


def _write(renderer, data: bytes, suffix: str) -> str:
    name = hashlib.sha256(data).hexdigest()[:20] + suffix
    return renderer.write_file([EXEC_DIR, name], data, overwrite=False, exists_ok=True)


class ExplorableRenderer:
    """myst-nb MIME renderer plugin for :data:`MIME_TYPE` (see module docstring)."""

    mime_priority_overrides = [(b, MIME_TYPE, 1) for b in HTML_BUILDERS]

    @staticmethod
    def handle_mime(renderer, data, inline: bool):
        if data.mime_type != MIME_TYPE:
            return None
        if inline:
            renderer.logger.warning("an explorable widget cannot be glued inline",
                                    subtype="explorable", line=data.line)
            return []
        from myst_nb.core.render import create_figure_context

        if (data.cell_metadata.get("mystnb") or {}).get("figure"):
            renderer.logger.warning("an explorable widget makes its own numbered figure "
                                    "(caption and key): remove the cell's mystnb figure "
                                    "metadata", subtype="explorable", line=data.line)
        payload = data.content
        if isinstance(payload, (str, bytes)):
            payload = json.loads(payload)
        key = payload["key"]
        files = [_write(renderer, base64.b64decode(f), ".png") for f in payload["frames"]]
        check = payload["check"]
        check_file = _write(renderer, base64.b64decode(check["png"]), ".png")
        meta = data.output_metadata.get(MIME_TYPE, {})
        doc = renderer.renderer
        env = getattr(doc, "sphinx_env", None)
        if env is not None:
            info = env.kexue_explorables.setdefault(env.docname, {})
            if key in info:
                renderer.logger.warning(f"explorable key {key!r} is used twice on this page",
                                        subtype="explorable", line=data.line)
            info[key] = {"frames": len(files), "cpu_seconds": meta.get("cpu_seconds"),
                         "seconds": meta.get("seconds"), "bytes": meta.get("bytes")}
        player = explorable_player(
            key=key, files=files, default=payload["default"], controls=payload["controls"],
            alt=payload["alt"], width=payload["width"], height=payload["height"],
            check={"setting": check["setting"], "index": check["index"], "file": check_file})
        with create_figure_context(doc, {"caption": payload["caption"], "name": key,
                                         "classes": "kexue-explorable-figure"}, data.line):
            doc.current_node.append(player)
        return []


def _register_renderer() -> None:
    """Add :class:`ExplorableRenderer` to myst-nb's MIME renderer plugins."""
    from myst_nb.core import render

    if getattr(render.load_mime_renders, "_kexue", False):
        return
    original = render.load_mime_renders

    def load_mime_renders():
        return [*original(), ExplorableRenderer]

    load_mime_renders._kexue = True
    render.load_mime_renders = load_mime_renders


# --------------------------------------------------------------------------- writing


def _site_file(app: Sphinx, uri: str) -> str:
    """Copy a frame from the source side into ``_widgets/``; return its path in the site."""
    src = Path(app.srcdir) / uri.lstrip("/")
    rel = f"{OUT_DIR}/{src.name}"
    dst = Path(app.outdir) / rel
    if not dst.exists() or dst.stat().st_size != src.stat().st_size:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return rel


def visit_player_html(self, node: explorable_player) -> None:
    app = self.builder.app
    page = self.builder.get_target_uri(self.builder.current_docname)
    url = lambda rel: relative_uri(page, rel)  # noqa: E731
    frames = [url(_site_file(app, f)) for f in node["files"]]
    check = dict(node["check"])
    check["url"] = url(_site_file(app, check.pop("file")))
    spec = {"key": node["key"], "controls": node["controls"], "frames": frames,
            "default": node["default"], "check": check}
    body = json.dumps(spec, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    alt = self.attval(node["alt"])
    self.body.append(
        f'<div class="kexue-explorable" data-key="{self.attval(node["key"])}" '
        f'style="max-width: {int(node["width"])}px">'
        f'<div class="kexue-explorable-controls"></div>'
        f'<img class="kexue-explorable-frame" src="{frames[node["default"]]}" alt="{alt}" '
        f'width="{node["width"]}" height="{node["height"]}" decoding="async">'
        f'<noscript><p class="kexue-explorable-nojs">This figure has controls: they work '
        f'in a browser with JavaScript on, or live in Jupyter (the launch buttons at the '
        f'top of the page).</p></noscript>'
        f'<script type="application/json" class="kexue-explorable-data">{body}</script>'
        f'</div>\n')
    raise nodes.SkipNode


def visit_player_other(self, node: explorable_player) -> None:
    raise nodes.SkipNode


def add_assets(app: Sphinx, pagename: str, templatename: str, context: dict,
               doctree) -> None:
    """The player on pages with widgets; Thebe from this site, with an offline message."""
    if doctree is not None and any(True for _ in doctree.findall(explorable_player)):
        app.add_js_file("widgets/explorable.js", defer="defer")
        app.add_css_file("widgets/explorable.css")
    scripts = context.get("script_files") or []
    local = context["pathto"](THEBE_JS, 1)
    has_thebe = False
    for k, script in enumerate(scripts):
        body = (getattr(script, "attributes", None) or {}).get("body", "")
        if "THEBE_JS_URL" in body and _JavaScript is not None:
            has_thebe = True
            new = re.sub(r'const THEBE_JS_URL = "[^"]*"',
                         f"const THEBE_JS_URL = {json.dumps(local)}", body)
            attrs = {k2: v for k2, v in script.attributes.items() if k2 != "body"}
            scripts[k] = _JavaScript("", priority=script.priority, body=new, **attrs)
    if has_thebe:
        app.add_js_file("widgets/livecode.js", defer="defer")
        app.add_css_file("widgets/livecode.css")


# --------------------------------------------------------------------------- environment


def _init_env(app: Sphinx, env, docnames) -> None:
    if not hasattr(env, "kexue_explorables"):
        env.kexue_explorables = {}


def _purge(app: Sphinx, env, docname: str) -> None:
    getattr(env, "kexue_explorables", {}).pop(docname, None)


def _merge(app: Sphinx, env, docnames, other) -> None:
    if not hasattr(env, "kexue_explorables"):
        env.kexue_explorables = {}
    for d in docnames:
        if d in getattr(other, "kexue_explorables", {}):
            env.kexue_explorables[d] = other.kexue_explorables[d]


def _check(app: Sphinx, env) -> None:
    seen: dict[str, str] = {}
    limit = app.config.kexue_widgets_max_seconds
    for docname, widgets in sorted(getattr(env, "kexue_explorables", {}).items()):
        total = 0.0
        for key, info in widgets.items():
            if key in seen:
                logger.warning(f"explorable key {key!r} is used in {seen[key]} and in "
                               f"{docname}: keys must be unique in the book",
                               location=docname, type="kexue", subtype="explorable")
            seen[key] = docname
            cpu = info.get("cpu_seconds") or 0.0
            total += cpu
            logger.info(f"explorable {key} ({docname}): {info['frames']} frames, "
                        f"{cpu:.1f} CPU s ({info.get('seconds')} s wall), "
                        f"{(info.get('bytes') or 0) / 1e3:.0f} kB")
        if total > limit:
            logger.warning(f"the widgets of {docname} take {total:.1f} CPU seconds to draw "
                           f"(at most {limit} allowed, kexue_widgets_max_seconds): use "
                           f"fewer frames or a cheaper draw", location=docname, type="kexue",
                           subtype="explorable")


def setup(app: Sphinx) -> dict[str, Any]:
    os.environ.setdefault(MODE_ENV, "static")  # inherited by the kernels the build starts
    _register_renderer()
    app.add_config_value("kexue_widgets_max_seconds", 30.0, "env")
    app.add_node(explorable_player,
                 html=(visit_player_html, None),
                 latex=(visit_player_other, None), text=(visit_player_other, None),
                 man=(visit_player_other, None), texinfo=(visit_player_other, None))
    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check)
    app.connect("html-page-context", add_assets)
    # Font Awesome: the theme's icons from a 4 kB subset of its solid font, not the 156 kB
    # font (scripts/vendor_assets.py writes it; this stylesheet comes after the theme's)
    app.add_css_file("vendor/fontawesome/fontawesome-subset.css")
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
