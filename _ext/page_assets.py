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
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

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


def _filename(script) -> str:
    return str(getattr(script, "filename", script) or "")


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return _filename(script), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def fix_scripts(app: Sphinx, pagename: str, templatename: str,
                context: dict[str, Any], doctree) -> None:
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


def setup(app: Sphinx) -> dict[str, Any]:
    # MathJax on every page, not only on pages with equations: a chapter title with
    # mathematics appears in every page's navigation (and search results).
    app.set_html_assets_policy("always")
    app.connect("html-page-context", fix_scripts, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
