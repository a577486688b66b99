#!/usr/bin/env python3
"""Vendor the browser assets the book needs, so the site works with no CDN.

The built site renders its mathematics with MathJax 3 and its widgets with
``@jupyter-widgets/html-manager`` (loaded through RequireJS). By default Sphinx and
myst-nb load both from public CDNs; this script downloads pinned releases from the npm
registry (``npm pack``, which checks each tarball against the registry's integrity hash)
and copies only the files a page can ask for into ``static/vendor/`` (published as
``_build/html/_static/vendor/``), each package with its licence. ``_config.yml`` points
``mathjax_path`` and ``nb_ipywidgets_js`` at them. (The folder is ``static/``, not
``_static/``: Jupyter Book adds every ``.js`` file under a root ``_static/`` to every page.)

Run it from anywhere (it needs ``npm``); it rewrites ``static/vendor/`` from scratch and
writes ``static/vendor/MANIFEST.txt`` (file, size, sha256), so a re-run that changes
nothing leaves ``git status`` clean::

    python scripts/vendor_assets.py

What is kept, and why:

- MathJax: ``tex-mml-chtml.js`` (the component Sphinx loads by default), the TeX
  extensions it autoloads on demand (``\\boldsymbol``, ``\\cancel``, ...), the CHTML woff
  fonts, and the menu component. Left out: the SVG output, the speech-rule engine and the
  accessibility explorer (opt-in from MathJax's menu; about 5 MB).
- html-manager: ``embed-amd.js`` and the Font Awesome woff2 fonts its CSS refers to
  (Chromium, Firefox and Safari all take woff2, so the eot/svg/ttf/woff copies are left out).
- RequireJS: ``require.js``.
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
HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"  # the release for ipywidgets 8.1
REQUIREJS = "requirejs@2.3.8"
FONTAWESOME = "@fortawesome/fontawesome-free@5.15.4"  # only for its licence (fonts in html-manager)

REQUIREJS_LICENSE = """\
MIT License

Copyright jQuery Foundation and other contributors, https://jquery.org/

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""

IPYWIDGETS_LICENSE = """\
BSD 3-Clause License

Copyright (c) 2015 Project Jupyter Contributors
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


def main() -> int:
    if shutil.which("npm") is None:
        print("npm is needed to vendor the assets", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mathjax = npm_pack(MATHJAX, work)
        manager = npm_pack(HTML_MANAGER, work)
        requirejs = npm_pack(REQUIREJS, work)
        fontawesome = npm_pack(FONTAWESOME, work)

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

        # Jupyter widgets: the AMD embed bundle and the fonts its CSS refers to
        dist, jw = manager / "dist", DEST / "jupyter-widgets"
        copy(dist / "embed-amd.js", jw / "embed-amd.js")
        for f in sorted(dist.glob("*.woff2")):
            copy(f, jw / f.name)
        (jw / "LICENSE").write_text(IPYWIDGETS_LICENSE, encoding="utf-8")
        copy(dist / "embed.js.LICENSE.txt", jw / "THIRD-PARTY-LICENSES.txt")
        copy(fontawesome / "LICENSE.txt", jw / "LICENSE-fontawesome.txt")

        # RequireJS
        copy(requirejs / "require.js", DEST / "requirejs" / "require.js")
        (DEST / "requirejs" / "LICENSE").write_text(REQUIREJS_LICENSE, encoding="utf-8")

    lines = [f"# Written by scripts/vendor_assets.py from {MATHJAX}, {HTML_MANAGER}, "
             f"{REQUIREJS}, {FONTAWESOME}", "# path  bytes  sha256"]
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
