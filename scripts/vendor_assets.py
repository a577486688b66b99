#!/usr/bin/env python3
"""Vendor the browser assets the book needs, so the site works with no CDN.

The built site renders its mathematics with MathJax 3, and its "Live Code" button runs
the page's cells with Thebe. By default Sphinx and sphinx-thebe load both from public CDNs;
this script downloads pinned releases from the npm registry (``npm pack``, which checks
each tarball against the registry's integrity hash) and copies only the files a page can
ask for into ``static/vendor/`` (published as ``_build/html/_static/vendor/``), each package
with its licence. ``_config.yml`` points ``mathjax_path`` at MathJax; ``_ext/widgets.py``
points sphinx-thebe at the vendored Thebe. (The folder is ``static/``, not ``_static/``:
Jupyter Book adds every ``.js`` file under a root ``_static/`` to every page.) The widgets
need nothing vendored: ``kexue_helpers.widgets`` draws their frames at build time and
``static/widgets/explorable.js`` (ours) plays them.

Run it from anywhere (it needs ``npm``); it rewrites ``static/vendor/`` from scratch and
writes ``static/vendor/MANIFEST.txt`` (file, size, sha256), so a re-run that changes
nothing leaves ``git status`` clean::

    python scripts/vendor_assets.py

What is kept, and why:

- MathJax: ``tex-mml-chtml.js`` (the component Sphinx loads by default), the TeX
  extensions it autoloads on demand (``\\boldsymbol``, ``\\cancel``, ...), the CHTML woff
  fonts, and the menu component. Left out: the SVG output, the speech-rule engine and the
  accessibility explorer (opt-in from MathJax's menu; about 5 MB).
- Font Awesome (not from npm: from the installed pydata-sphinx-theme, whose stylesheet
  draws the theme's icons with its solid webfont, 156 kB): a subset of ``fa-solid-900.ttf``
  with only the icons the theme, the book theme and the extensions can show (every
  ``fa-<name>`` in their templates, scripts and Python, and every icon character in their
  stylesheets), as WOFF, with a stylesheet that redeclares the font face (added to every
  page by ``_ext/widgets.py``, after the theme's, so the full font is never fetched).
- Thebe: ``lib/index.js``, the chunks it loads on demand (``lib/<n>.index.js``) and
  ``lib/thebe.css``, without source maps (about 3.3 MB, loaded only when a reader clicks
  Live Code). The registry serves Thebe 0.9, whose ``window.thebelab`` keeps the
  ``bootstrap``/``on`` calls sphinx-thebe 0.3 makes (it asks for 0.8.2 from unpkg).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "static" / "vendor"

MATHJAX = "mathjax@3.2.2"
THEBE = "thebe@0.9.3"

# The thebe tarball ships no LICENSE file; its package.json says "license": "BSD-3-Clause",
# "author": "Executable Books Project". This is the standard BSD-3-Clause text for it.
THEBE_LICENSE = """\
BSD 3-Clause License

Copyright (c) the Executable Books Project and the Thebe contributors
All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are
permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of
   conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice, this list of
   conditions and the following disclaimer in the documentation and/or other materials
   provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors may be used
   to endorse or promote products derived from this software without specific prior
   written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY
EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL
THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT
OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR
TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def npm_pack(spec: str, workdir: Path) -> Path:
    """Download ``spec`` from the npm registry and unpack it; return its ``package/``."""
    out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=workdir, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    target = workdir / out.removesuffix(".tgz")
    with tarfile.open(workdir / out) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


ICON_PACKAGES = ("pydata_sphinx_theme", "sphinx_book_theme", "sphinx_togglebutton",
                 "sphinx_thebe", "sphinx_design", "sphinx_proof", "sphinx_exercise", "myst_nb",
                 "sphinx_copybutton")


def subset_fontawesome(dest: Path) -> int:
    """Write the Font Awesome solid subset and its stylesheet into ``dest``; return the
    number of icons kept."""
    import importlib.util
    import re

    from fontTools import subset

    roots = []
    for name in ICON_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            roots.append(Path(spec.origin).parent)
    theme = roots[0] / "theme" / "pydata_sphinx_theme" / "static"
    css = (theme / "styles" / "pydata-sphinx-theme.css").read_text(encoding="utf-8")
    # icon name -> code point, from the theme's own ".fa-name:before{content:...}" rules
    names: dict[str, int] = {}
    for sel, cp in re.findall(r'((?:\.fa-[a-z0-9-]+:{1,2}before,?)+)\{content:"(\\[0-9a-f]+|.)"\}',
                              css):
        code = int(cp[1:], 16) if cp.startswith("\\") else ord(cp)
        for n in re.findall(r"\.fa-([a-z0-9-]+):", sel):
            names[n] = code
    used: set[str] = set()
    codes: set[int] = set()
    here = ROOT / "_ext", ROOT / "_config.yml"
    for root in (*roots, *here):
        files = [root] if root.is_file() else [f for f in root.rglob("*") if f.suffix in
                                                 (".html", ".js", ".py", ".css", ".yml")]
        for f in files:
            if f.name.startswith("fontawesome") or f.suffix == ".map":
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            if f.suffix == ".css":  # icon characters drawn by the stylesheets themselves
                body = re.sub(r"(?:\.fa-[a-z0-9-]+:{1,2}before,?)+\{[^}]*\}", "", text)
                codes.update(ord(c) for c in body if 0xE000 <= ord(c) <= 0xF8FF)
                codes.update(int(h, 16) for h in re.findall(r'"\\([ef][0-9a-f]{3})"', body))
            else:
                used.update(re.findall(r"fa-([a-z0-9-]+)", text))
    codes.update(names[n] for n in used if n in names)
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(theme / "vendor" / "fontawesome" / "webfonts" /
                                "fa-solid-900.ttf"), options)
    sub = subset.Subsetter(options)
    sub.populate(unicodes=sorted(codes))
    sub.subset(font)
    dest.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff"
    font.save(str(dest / "fa-solid-900-subset.woff"), reorderTables=False)
    (dest / "fontawesome-subset.css").write_text(
        "/* Font Awesome Free (SIL OFL 1.1), solid: only the icons this site can show, "
        "written by scripts/vendor_assets.py */\n"
        '@font-face{font-display:block;font-family:"Font Awesome 6 Free";font-style:normal;'
        'font-weight:900;src:url(fa-solid-900-subset.woff) format("woff")}\n',
        encoding="utf-8")
    (dest / "LICENSE.txt").write_text(
        "Font Awesome Free by Fonticons, Inc. (https://fontawesome.com), taken from the\n"
        "pydata-sphinx-theme package. Fonts: SIL Open Font License 1.1\n"
        "(https://openfontlicense.org); icons: CC BY 4.0; code: MIT.\n", encoding="utf-8")
    return len(codes)


def main() -> int:
    if shutil.which("npm") is None:
        print("npm is needed to vendor the assets", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mathjax = npm_pack(MATHJAX, work)
        thebe = npm_pack(THEBE, work)

        if DEST.exists():
            shutil.rmtree(DEST)

        # MathJax 3
        es5, mj = mathjax / "es5", DEST / "mathjax"
        copy(es5 / "tex-mml-chtml.js", mj / "tex-mml-chtml.js")
        for sub in ("input/tex/extensions", "output/chtml/fonts/woff-v2", "ui"):
            for f in sorted((es5 / sub).rglob("*")):
                if f.is_file():
                    copy(f, mj / f.relative_to(es5))
        copy(mathjax / "LICENSE", mj / "LICENSE")

        # Thebe: the bundle, its on-demand chunks and its stylesheet (no source maps)
        lib, th = thebe / "lib", DEST / "thebe"
        for f in sorted(lib.glob("*.js")) + [lib / "thebe.css"]:
            copy(f, th / f.name)
        for f in sorted(lib.glob("*.LICENSE.txt")):
            copy(f, th / f.name)
        (th / "LICENSE").write_text(THEBE_LICENSE, encoding="utf-8")

    n_icons = subset_fontawesome(DEST / "fontawesome")
    print(f"Font Awesome: {n_icons} icons kept")

    lines = [f"# Written by scripts/vendor_assets.py from {MATHJAX}, {THEBE} and the Font "
             "Awesome of the installed pydata-sphinx-theme",
             "# path  bytes  sha256"]
    total = 0
    for f in sorted(DEST.rglob("*")):
        if f.is_file() and f.name != "MANIFEST.txt":
            data = f.read_bytes()
            total += len(data)
            lines.append(f"{f.relative_to(DEST).as_posix()}  {len(data)}  "
                         f"{hashlib.sha256(data).hexdigest()}")
    (DEST / "MANIFEST.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"vendored {len(lines) - 2} files, {total / 1e6:.1f} MB, into {DEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
