"""The built site, read in a real browser (headless Chromium driven by Playwright).

Serves ``_build/html`` on 127.0.0.1 (an ephemeral port, a daemon thread that stops when
the test session ends, or after ``conftest.SERVER_LIFETIME_S`` at the latest) and opens every page
in ``_toc.yml``, plus the index, search, general-index and module-index pages, in the
light theme (stored, as the theme switch stores it), and a sample of them (``DARK_SAMPLE``)
in the dark (a first visit on a system in dark mode). Each page is loaded once per theme and process; every check of the page
reads that visit (``visit``). A page fails when it has

- mathematics MathJax did not render (a ``.math`` element with no ``mjx-container``, raw TeX
  such as ``$$``, ``\\begin``, ``\\frac`` in a text node outside code, or a MathJax error),
- a broken image (``naturalWidth == 0``),
- a request to any host but the local server, a response >= 400, or a failed request,
- a console error or an uncaught page error,
- a link to a local page that does not exist, or to an ``#anchor`` the target lacks,
- a widget (``application/vnd.jupyter.widget-view+json``) that did not render its controls,
  or an ``interact`` whose output area stayed empty.

Screenshots of a page that fails go to ``_build/screenshots/<page>-<theme>.png`` (full
page), and each of its widgets to ``<page>-widget<k>-<theme>.png``; ``KEXUE_SCREENSHOTS=1``
takes them of every page.

Page quality (issue 14), ``test_page_quality[<page>-<check>]`` on every page of the toc,
measured at 1280 px (light), at 390 px and in the dark theme:

- ``equations``: every display equation fits its box at 1280 px (not wider than the box,
  not cut by an enclosing element); at 390 px it stays on screen and, if wider than its
  box, scrolls inside it; inline math stays inside its paragraph at 1280 px.
- ``noise``: no output that is a bare value (a stray ``Out``), a repr (``np.float64(``,
  ``tensor(``, ``<... object at 0x``), a warning or error, a path, a log line, a printed dict,
  or anything on stderr.
- ``figures``: every output image is in a numbered figure with a caption of a few words and
  alt text that describes it (not a file name or hash); shown at >= 90% of its drawn width;
  SVG or a 2x raster; the smallest SVG text >= 11 px on screen; in the dark theme a white
  card that is not dimmed.
- ``code``: visible code cells, code blocks and outputs fit the column without horizontal
  scrolling; visible code is under a fifth of the page's height.
- ``numbers``: glued numbers in the weight of the text around them; no number in E notation
  (``2e-15``) in the text.

The checks are themselves tested on ``tests/fixtures/site`` (built by the tests): the
compliant page passes them all, the non-compliant one fails each for the right reason, and
the compliant page fails the style-dependent ones when the site's CSS fixes are undone.
Also: no header band, no console error on a first visit, a clickable chapter map,
citations told apart, clean search snippets.

Where there is no built site (or one older than ``_toc.yml``: a page in the toc has no HTML),
no Playwright or no Chromium, the tests SKIP with the reason;
with ``KEXUE_BROWSER_REQUIRED=1`` (as in ``.ci/run``) they FAIL instead. Environment:
``KEXUE_SITE`` (default ``_build/html``), ``KEXUE_CHROMIUM`` (default: ``/usr/bin/chromium``,
then ``chromium``, ``chromium-browser``, ``google-chrome`` on ``PATH``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("KEXUE_SITE", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots"
SCREENSHOTS = os.environ.get("KEXUE_SCREENSHOTS") == "1"
NAV_TIMEOUT_MS = 90_000

# TeX that must never be visible as text once MathJax has run
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]"        # display/inline delimiters
    r"|\\[A-Za-z]{2,}"                      # any TeX control word: \frac, \log, \begin, ...
    r"|\$[^$\s][^$\n]*[\\^_][^$\n]*\$")    # $...$ with a macro, sub- or superscript

WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'


# one copy of these, shared with test_widgets.py
from .conftest import keep_local, serving  # noqa: E402
from .conftest import unavailable as _unavailable  # noqa: E402
# the widget and first-load checks, run on the book's pages in each page's one visit
from .test_widgets import BOOK_WIDGET_PAGES, MAX_FIRST_LOAD  # noqa: E402
from .test_widgets import check_widgets_on, first_load_on  # noqa: E402


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    for chapter in toc.get("chapters", []):
        files.append(chapter["file"])
    return files


def _is_notebook(docname: str) -> bool:
    src = ROOT / f"{docname}.md"
    return src.exists() and "kernelspec:" in src.read_text(encoding="utf-8")[:2000]


TOC = _toc_pages()
PAGES = [f"{d}.html" for d in TOC] + ["index.html", "search.html", "genindex.html",
                                     "py-modindex.html"]
NOTEBOOKS = [d for d in TOC if _is_notebook(d)]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def site():
    """Base URL of the built site, served on 127.0.0.1 by a bounded daemon thread."""
    if not (SITE / "index.html").exists():
        _unavailable(f"no built site at {SITE} (build it: jupyter-book build . -W -n --keep-going)")
    missing = [d for d in TOC if not (SITE / f"{d}.html").exists()]
    if missing:
        _unavailable(f"the site at {SITE} is older than _toc.yml (no page for {missing}); "
                     "rebuild it: jupyter-book build . -W -n --keep-going")
    with serving(SITE) as url:
        yield url


@pytest.fixture(scope="session")
def browser(chromium):
    """The shared headless Chromium of ``conftest.py`` (a fresh profile per context)."""
    return chromium


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" or (k == "name" and tag == "a"):
                self.ids.add(v or "")


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> tuple[int, set[str]]:
    """Status of a local URL and, for HTML, the ids/names its anchors can target."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, set()
    ids: set[str] = set()
    if "html" in ctype:
        p = _Anchors()
        p.feed(body.decode("utf-8", "replace"))
        ids = p.ids
    return status, ids


# --------------------------------------------------------------------------- page checks

_WAIT_FOR_MATHJAX = """
async () => {
  if (!window.MathJax) return 'no-mathjax';
  for (let i = 0; i < 600 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  await MathJax.startup.promise;
  if (MathJax.typesetPromise) await MathJax.typesetPromise();
  return 'typeset';
}
"""

_RAW_TEXT_NODES = """
() => {
  const skip = 'pre, code, script, style, textarea, kbd, samp, svg, mjx-container, '
             + '.MathJax, .highlight, .search, #searchbox, .bd-search, .widget-output';
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    if (el.checkVisibility && !el.checkVisibility()) continue;  // e.g. the print-only header
    if (n.textContent.trim()) out.push(n.textContent);
  }
  return out;
}
"""

_MATH_STATE = """
() => ({
  unrendered: Array.from(document.querySelectorAll('.math, span.math, div.math'))
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  errors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
      .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
})
"""

_BROKEN_IMAGES = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r);
                         setTimeout(r, 15000); })));
  return imgs.filter(i => i.naturalWidth === 0).map(i => i.currentSrc || i.src);
}
"""

_WIDGETS_RENDERED = """
() => {
  const views = Array.from(document.querySelectorAll('%s'));
  const rendered = v => {
    const prev = v.previousElementSibling;
    if (!prev || !prev.classList.contains('widget-subarea')) return false;
    const w = prev.querySelector('.jupyter-widgets, .lm-Widget');
    const box = prev.getBoundingClientRect();
    return !!w && box.width > 0 && box.height > 0;
  };
  return views.length > 0 && views.every(rendered);
}
""" % WIDGET_VIEW

_WIDGET_REPORT = """
() => Array.from(document.querySelectorAll('%s')).map(v => {
  const sub = v.previousElementSibling;
  const ok = !!sub && sub.classList.contains('widget-subarea');
  return {
    model: JSON.parse(v.textContent).model_id,
    rendered: ok && !!sub.querySelector('.jupyter-widgets, .lm-Widget'),
    controls: ok ? sub.querySelectorAll('.widget-slider, .widget-hslider, .widget-dropdown, '
        + '.widget-button, .widget-checkbox, .widget-text, .widget-toggle-buttons, '
        + '.widget-radio, .widget-select, .widget-play').length : 0,
    interacts: ok ? Array.from(sub.querySelectorAll('.widget-interact')).map(i => {
        const out = i.querySelector('.widget-output');
        return out ? out.querySelectorAll('img, pre, .jp-OutputArea-output').length : -1;
    }) : [],
  };
})
""" % WIDGET_VIEW


def _open(browser, site: str, page: str, theme: str, first_visit: bool = False):
    """Open ``page`` in a fresh context; return (page, problems) with network/console taps.

    The theme is stored in localStorage as the theme's switch would, unless
    ``first_visit`` (a reader who has never used the switch: the theme follows the system).
    """
    context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
    if not first_visit:
        context.add_init_script(f"try {{ localStorage.setItem('mode', '{theme}'); "
                                f"localStorage.setItem('theme', '{theme}'); }} catch (e) {{}}")
    problems = keep_local(context, site)
    host = urlsplit(site).netloc
    p = context.new_page()
    p.pending = {}  # url -> count of requests in flight
    p.responses = []  # every response, for the first-load measurement
    p.on("response", lambda r: p.responses.append(r))
    p.on("request", lambda r: p.pending.__setitem__(r.url, p.pending.get(r.url, 0) + 1))
    done = lambda r: p.pending.pop(r.url, None) if p.pending.get(r.url, 0) <= 1 \
        else p.pending.__setitem__(r.url, p.pending[r.url] - 1)
    p.on("requestfinished", done)
    p.on("requestfailed", done)
    p.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
         if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    p.on("requestfailed", lambda r: problems.append(
        f"request failed: {r.url} ({r.failure})")
        if urlsplit(r.url).netloc == host else None)
    p.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
         if r.status >= 400 else None)
    p.goto(urljoin(site, page), wait_until="load", timeout=NAV_TIMEOUT_MS)
    return context, p, problems


def _settle(p, quiet_s: float = 1.0, limit_s: float = NAV_TIMEOUT_MS / 1000) -> list[str]:
    """Wait until no request has been in flight for ``quiet_s``; report any that never end."""
    quiet_since = time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        p.wait_for_timeout(100)
        if p.pending:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return []
    return [f"request still in flight after {limit_s:.0f} s: {u}" for u in p.pending]


def _check_links(p, site: str) -> list[str]:
    problems = []
    # SVG links (the chapter map) have an SVGAnimatedString href: resolve it by hand
    hrefs = p.eval_on_selector_all(
        "a[href]", "as => as.map(a => typeof a.href === 'string' ? a.href"
                   " : new URL(a.getAttribute('href'), document.baseURI).href)")
    for href in sorted(set(hrefs)):
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(site).netloc:
            continue
        target = href.split("#", 1)[0]
        status, ids = _fetch(target)
        if status >= 400:
            problems.append(f"broken link: {href} (HTTP {status})")
        elif parts.fragment and unquote(parts.fragment) not in ids:
            problems.append(f"broken anchor: {href}")
    return problems


def _screenshots(p, page: str, theme: str) -> None:
    """The whole page, and each widget, as PNGs in ``SHOTS`` (a full-page screenshot of a
    long chapter costs seconds: taken when the page fails, or for every page with
    ``KEXUE_SCREENSHOTS=1``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = page.removesuffix(".html").replace("/", "_")
    try:  # a screenshot that times out must not hide the page's own problems
        p.screenshot(path=str(SHOTS / f"{stem}-{theme}.png"), full_page=True, timeout=60_000)
        subareas = p.locator(".widget-subarea")
        for k in range(subareas.count()):
            subareas.nth(k).scroll_into_view_if_needed()
            subareas.nth(k).screenshot(path=str(SHOTS / f"{stem}-widget{k}-{theme}.png"))
    except Exception as e:  # noqa: BLE001 (reported, not raised)
        print(f"screenshot of {page} ({theme}) failed: {type(e).__name__}")


def _render_problems(p, site: str) -> list[str]:
    """What a reader would see broken on the open page ``p``: unrendered mathematics, raw
    TeX, widgets without controls, broken images, broken local links."""
    problems: list[str] = []
    p.evaluate(_WAIT_FOR_MATHJAX)
    math = p.evaluate(_MATH_STATE)
    problems += [f"math not rendered: {t!r}" for t in math["unrendered"]]
    problems += [f"MathJax error: {t!r}" for t in math["errors"]]
    for text in p.evaluate(_RAW_TEXT_NODES):
        m = RAW_TEX.search(text)
        if m:
            problems.append(f"raw TeX in the text: {m.group(0)!r} in {text.strip()[:100]!r}")

    n_views = p.locator(WIDGET_VIEW).count()
    if n_views:
        try:
            p.wait_for_function(_WIDGETS_RENDERED, timeout=60_000)
        except Exception:  # reported below, view by view
            pass
        for w in p.evaluate(_WIDGET_REPORT):
            if not w["rendered"]:
                problems.append(f"widget {w['model']} did not render")
            elif not w["controls"]:
                problems.append(f"widget {w['model']} rendered no controls")
            if any(n <= 0 for n in w["interacts"]):
                problems.append(f"widget {w['model']}: interact output is empty")

    problems += [f"broken image: {src}" for src in p.evaluate(_BROKEN_IMAGES)]
    problems += _check_links(p, site)
    return problems


def _widgets_of(p, page: str) -> dict | None:
    """The page's explorable widgets driven through every frame
    (``test_widgets.check_widgets_on``): ``{"report": ..., "error": None}``, or the first
    defect found as ``error``; None for a page without an explorable widget."""
    if not p.locator(".kexue-explorable").count():
        return None
    try:
        return {"report": check_widgets_on(p, SITE, page), "error": None}
    except Exception as e:  # noqa: BLE001 (the widget test fails with it)
        return {"report": None, "error": f"{type(e).__name__}: {e}"}


_VISITS: dict[tuple[str, str, str], dict] = {}


def visit(browser, site: str, page: str, theme: str) -> dict:
    """Open ``page`` once per test process and theme, and measure everything the checks of
    that page need; the tests of one page read the result (``.ci/run`` keeps a page's tests
    in one process: ``--dist loadgroup``, groups set in ``conftest.py``). Each page load of a
    long chapter costs seconds of MathJax typesetting: eight loads per chapter became two.

    ``light``: the theme stored in localStorage, as the theme switch stores it. ``dark``: a
    first visit (nothing stored) on a system in dark mode: the page must follow the system
    theme without the console error "Got invalid theme mode" (html_context default_mode).

    Returns a dict: ``load`` (console errors, failed or non-local requests, responses >= 400,
    requests that never end, also while the widgets are driven), ``theme`` (the theme the
    page shows), ``render`` (see :func:`_render_problems`), and for the light visit of a
    page in the toc, in the order measured: ``first_load`` (bytes, widget frames fetched,
    problems: ``test_widgets.first_load_on``, before anything touches the page),
    ``citations``, ``buttons`` (the launch and download links, and whether there is a Live
    Code button), ``map`` (the chapter map's links), ``chrome`` (header band and search
    controls at 1280 and 390 px), ``widgets`` (:func:`_widgets_of`) and ``quality``
    (:func:`measure_quality`'s checks, last: it opens every fold and resizes the page).
    """
    key = (site, page, theme)
    if key in _VISITS:
        return _VISITS[key]
    context, p, problems = _open(browser, site, page, theme, first_visit=(theme == "dark"))
    out: dict = {"load": problems}
    try:
        if page == "index.html":  # the root redirects to the introduction
            p.wait_for_url(f"**/{TOC[0]}.html", timeout=NAV_TIMEOUT_MS)
            p.wait_for_load_state("load")
        problems += _settle(p)
        in_toc = theme == "light" and page.removesuffix(".html") in TOC
        if in_toc:  # before anything touches the page
            out["first_load"] = first_load_on(p)
        out["theme"] = p.evaluate("document.documentElement.dataset.theme")
        out["render"] = _render_problems(p, site)
        shot = bool(out["render"] or problems or SCREENSHOTS)
        if shot:  # as the reader sees it, before the widgets move and the theme changes
            _screenshots(p, page, theme)
        if in_toc:
            out["citations"] = p.evaluate(_CITATIONS)
            out["buttons"] = {
                "links": p.eval_on_selector_all(
                    ".dropdown-launch-buttons a, .dropdown-download-buttons a",
                    "as => as.map(a => a.getAttribute('href') || '')"),
                "thebe": p.locator(".btn-launch-thebe").count() > 0}
            out["map"] = p.eval_on_selector_all(
                "svg.chapter-map-svg a", "as => as.map(a => a.getAttribute('href'))")
            out["chrome"] = {DESKTOP["width"]: p.evaluate(_CHROME)}
            out["widgets"] = _widgets_of(p, page)
            out["quality"] = _measure_quality_on(p, chrome=out["chrome"])
        if problems and not shot:  # a console error while the widgets moved
            _screenshots(p, page, theme)
    finally:
        context.close()
    _VISITS[key] = out
    return out


@pytest.mark.parametrize("page", BOOK_WIDGET_PAGES or ["(no page with a widget)"])
def test_book_widgets_respond(browser, site, page):
    """Every control of every explorable widget, through every value: the right frame, its
    readout, on screen within 100 ms at the median (``test_widgets.py`` says how)."""
    if not BOOK_WIDGET_PAGES:
        pytest.skip(f"no page of {SITE} has an explorable widget yet")
    v = visit(browser, site, page, "light")
    assert v.get("widgets"), f"{page}: no explorable widget found on the page"
    assert v["widgets"]["error"] is None, v["widgets"]["error"]
    r = v["widgets"]["report"]
    print(f"\n{page}: {r['widgets']} widgets, {r['moves']} moves, median "
          f"{r['median_ms']:.1f} ms, slowest {r['max_ms']:.1f} ms")


@pytest.mark.parametrize("page", [f"{d}.html" for d in TOC])
def test_book_first_load(browser, site, page):
    """At most 3 MB on a first visit, no widget frame but the defaults before the reader
    points at a widget, no ``ipywidgets`` view."""
    total, frames, problems = visit(browser, site, page, "light")["first_load"]
    print(f"\n{page}: {total / 1e6:.2f} MB on first load")
    assert not problems, "\n".join(problems)
    assert not frames, f"frames fetched before the reader touched a widget: {frames}"
    assert total <= MAX_FIRST_LOAD, f"{page}: {total / 1e6:.2f} MB on first load (at most 3)"


# The dark theme is read on a sample of pages: the theme comes from one template and one
# style sheet, the same on every page; what differs per page in the dark theme (its
# figures' white cards) is measured on every page by the light visit's quality pass, which
# switches the page to dark. The sample: the introduction, the first and the last chapter,
# and the search page.
DARK_SAMPLE = [f"{TOC[0]}.html"] + ([f"{NOTEBOOKS[0]}.html", f"{NOTEBOOKS[-1]}.html"]
                                    if NOTEBOOKS else []) + ["search.html"]


@pytest.mark.parametrize("page, theme", [(p, "light") for p in PAGES]
                         + [(p, "dark") for p in DARK_SAMPLE])
def test_page_renders(browser, site, page, theme):
    v = visit(browser, site, page, theme)
    problems = v["load"] + v["render"]
    if v["theme"] != theme:
        problems.append(f"the page shows the theme {v['theme']!r}, not {theme!r}")
    assert not problems, f"{page} ({theme}):\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- page quality
# Issue 14, items 1-4: what a reader sees on every page. Measured once per page (cached) at
# 1280 x 900 in the light theme, then at 390 x 844 (a phone), then in the dark theme; each
# check is its own test so a failure names the page and the rule.

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MIN_FIGURE_FONT_PX = 11      # tick labels and legends, on screen (issue 14, item 3)
MIN_SHOWN_FRACTION = 0.9     # a figure is shown at >= 90% of the size it was drawn at
MAX_CODE_SHARE = 0.2         # visible code under a fifth of a chapter's height
QUALITY_CHECKS = ("equations", "noise", "figures", "code", "numbers")

_EXPAND_ALL = """
() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('button.toggle-button[aria-expanded="false"]')
      .forEach(b => b.click());
}
"""

# Everything measured in the page; returns {check: [problem, ...]}. ``phone``: only the
# equation checks that apply to a narrow screen. ``dark``: only the dark-theme figure check.
_QUALITY = r"""
async ({phone, dark}) => {
  const R = {equations: [], noise: [], figures: [], code: [], numbers: []};
  const main = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!main) return R;
  const vw = document.documentElement.clientWidth;
  const short = (s, n = 70) => s.replace(/\s+/g, ' ').trim().slice(0, n);
  const px = v => Math.round(v);

  // ---------------------------------------------------------------- equations (item 1)
  const texOf = new Map();
  try {
    for (const m of MathJax.startup.document.math)
      if (m.inputJax && m.inputJax.name === 'TeX') texOf.set(m.typesetRoot, m.math);
  } catch (e) {}
  // MathJax's own hidden copies (assistive MathML, nested containers) are not measured
  const own = el => !el.parentElement.closest('mjx-container, mjx-assistive-mml');
  const eqName = el => {
    const box = el.closest('div.math');
    const no = box && box.querySelector('.eqno')
      ? box.querySelector('.eqno').textContent.replace('#', '').trim() + ' ' : '';
    return no + JSON.stringify(short(texOf.get(el) || el.textContent, 60));
  };
  const clippedBy = (el, r) => {
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === 'visible') continue;
      const ar = a.getBoundingClientRect();
      if (r.right > ar.right + 1 || r.left < ar.left - 1)
        return a.tagName.toLowerCase() + (a.className ? '.' + String(a.className)
               .trim().split(/\s+/).slice(0, 2).join('.') : '');
    }
    return null;
  };
  if (!dark) for (const el of main.querySelectorAll('mjx-container[display="true"]')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !own(el)) continue;
    const over = px(el.scrollWidth - el.clientWidth);
    const by = clippedBy(el, r);
    if (!phone) {
      if (over > 1)
        R.equations.push(`display equation ${eqName(el)} is ${over} px wider than its ` +
                         `box (${el.clientWidth} px) at ${vw} px: break it (aligned/split)`);
      else if (by) R.equations.push(`display equation ${eqName(el)} is cut by ${by}`);
    } else {
      if (r.right > vw + 1)
        R.equations.push(`display equation ${eqName(el)} runs past the screen edge ` +
                         `(right edge ${px(r.right)} > ${vw} px)`);
      else if (by) R.equations.push(`display equation ${eqName(el)} is cut by ${by}`);
      if (over > 1) {
        const ox = getComputedStyle(el).overflowX;
        const before = el.scrollLeft;
        el.scrollLeft = over;
        const moved = el.scrollLeft > 0;
        el.scrollLeft = before;
        if (!['auto', 'scroll'].includes(ox) || !moved)
          R.equations.push(`display equation ${eqName(el)}: ${over} px cut off at ${vw} px ` +
                           `and its box does not scroll (overflow-x: ${ox})`);
      }
    }
  }
  if (!phone && !dark) for (const el of main.querySelectorAll('mjx-container:not([display="true"])')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !own(el) || el.closest('.cell_output, pre, table')) continue;
    let b = el.parentElement;
    while (b && b !== main && getComputedStyle(b).display.startsWith('inline'))
      b = b.parentElement;
    const br = b.getBoundingClientRect();
    const right = br.right - parseFloat(getComputedStyle(b).paddingRight || '0');
    const by = clippedBy(el, r);
    if (r.right > right + 2)
      R.equations.push(`inline math ${eqName(el)} sticks out of its ${b.tagName.toLowerCase()} ` +
                       `by ${px(r.right - right)} px: keep $...$ short`);
    else if (by) R.equations.push(`inline math ${eqName(el)} is cut by ${by}`);
  }
  if (phone || dark) {
    if (dark) {
      // ------------------------------------------------------------ figures in the dark theme
      for (const img of main.querySelectorAll('.cell_output img, figure img')) {
        const s = getComputedStyle(img);
        if (s.filter !== 'none')
          R.figures.push(`figure ${short(img.alt, 40)} is dimmed in the dark theme ` +
                         `(filter: ${s.filter})`);
        if (!/^rgba?\(255, 255, 255(, 1)?\)$/.test(s.backgroundColor))
          R.figures.push(`figure ${short(img.alt, 40)} is not on a white card in the dark ` +
                         `theme (background ${s.backgroundColor})`);
      }
    }
    return R;
  }

  // ---------------------------------------------------------------- noisy output (item 2)
  const N = String.raw`[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf`;
  const BARE = new RegExp(String.raw`^\s*(?:${N}|True|False|None|` +
      String.raw`[\[(]\s*(?:${N})(?:\s*,\s*(?:${N}))*\s*,?\s*[\])])\s*$`, 'i');
  const RULES = [
    [/\b(?:np|numpy|torch)\.\w+\(|\b(?:tensor|array)\(|<[\w.]+ object at 0x|<(?:Figure|matplotlib)[^>]*>|\[<matplotlib|\bdtype=/, 'a repr'],
    [/\b[A-Z]\w*Warning\b|Traceback \(most recent call last\)|\b[A-Z]\w*Error:/, 'a warning or error'],
    [/(?:^|[\s'"(=])(?:\/(?:tmp|home|work|root|usr|var|opt|mnt|Users)\/|~\/|[A-Za-z]:\\)|site-packages|ipykernel_\d+|\.py:\d+/, 'a path'],
    [/^\s*\[?(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\]?[\s:\]-]|^\s*\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d/m, 'a log line'],
    [/\{\s*['"]?[\w.-]+['"]?\s*:\s*[^{}]*\}/, 'a printed dict'],
  ];
  for (const o of main.querySelectorAll('.cell_output .output')) {
    if (o.closest('.widget-output')) continue;
    const pre = o.querySelector('pre');
    const text = (pre || o).textContent;
    const where = `output ${JSON.stringify(short(text, 60))}`;
    if (o.classList.contains('stderr')) R.noise.push(`${where}: stderr (a warning or log line)`);
    if (o.classList.contains('traceback') || o.classList.contains('error'))
      R.noise.push(`${where}: an error`);
    if (!pre) continue;
    if ((o.classList.contains('text_plain') || o.classList.contains('stream')) && BARE.test(text))
      R.noise.push(`${where}: a bare value with no words (a stray Out or print)`);
    for (const [re, what] of RULES)
      if (re.test(text)) R.noise.push(`${where}: ${what}`);
    const over = px(pre.scrollWidth - pre.clientWidth);
    if (over > 1) R.code.push(`${where}: ${over} px wider than the column (scrolls)`);
  }

  // ---------------------------------------------------------------- figures (item 3)
  const svgFontPt = async url => {
    try {
      const t = await (await fetch(url)).text();
      const vb = /viewBox="[\d.]+ [\d.]+ ([\d.]+) [\d.]+"/.exec(t);
      const sizes = Array.from(t.matchAll(/scale\(([\d.]+) -([\d.]+)\)/g),
                               m => 100 * parseFloat(m[1]));
      return {vbWidth: vb ? parseFloat(vb[1]) : null, min: sizes.length ? Math.min(...sizes) : null};
    } catch (e) { return {vbWidth: null, min: null}; }
  };
  const HASHLIKE = /(?:^|\/)_images\/|[0-9a-f]{16,}|\.(?:png|svg|jpe?g|gif|webp)$/i;
  for (const img of main.querySelectorAll('.cell_output img, figure img')) {
    const src = img.currentSrc || img.src;
    const name = short(img.alt || src.split('/').pop(), 40);
    const fig = img.closest('figure');
    const cap = fig && fig.querySelector('figcaption');
    const num = cap && cap.querySelector('.caption-number');
    const capText = cap ? short((cap.querySelector('.caption-text') || cap).textContent, 400) : '';
    if (!fig || !cap) R.figures.push(`figure ${name}: not in a numbered figure with a caption ` +
                                     `(give the cell mystnb figure metadata)`);
    else {
      if (!num || !/\d/.test(num.textContent)) R.figures.push(`figure ${name}: no number`);
      if (capText.split(/\s+/).filter(Boolean).length < 4)
        R.figures.push(`figure ${name}: caption too short to say what to see: ${JSON.stringify(capText)}`);
    }
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || HASHLIKE.test(alt) || alt.split(/\s+/).length < 4)
      R.figures.push(`figure ${name}: alt text ${JSON.stringify(short(alt, 50))} does not ` +
                     `describe the figure`);
    if (!img.complete) await new Promise(r => { img.onload = img.onerror = r; setTimeout(r, 5000); });
    const shown = img.getBoundingClientRect().width;
    if (!shown || !img.naturalWidth) continue;
    const isSvg = /\.svg(?:$|\?)/i.test(src);
    const attrW = parseFloat(img.getAttribute('width') || img.style.width || '0');
    const drawn = attrW || img.naturalWidth;   // CSS px the figure was drawn for
    if (shown < MIN_SHOWN * drawn)
      R.figures.push(`figure ${name}: drawn ${px(drawn)} px wide, shown at ${px(shown)} px ` +
                     `(${px(100 * shown / drawn)}%): draw it at COLUMN_WIDTH`);
    if (!isSvg && img.naturalWidth < 1.9 * shown)
      R.figures.push(`figure ${name}: raster at ${(img.naturalWidth / shown).toFixed(2)}x ` +
                     `the shown size (use SVG or a 2x PNG: kexue_helpers.plotting.use_style)`);
    if (isSvg) {
      const f = await svgFontPt(src);
      if (f.vbWidth && f.min) {
        const fontPx = f.min * shown / f.vbWidth;
        if (fontPx < MIN_FONT_PX - 0.05)
          R.figures.push(`figure ${name}: smallest text ${fontPx.toFixed(1)} px on screen ` +
                         `(${f.min.toFixed(1)} pt), under ${MIN_FONT_PX} px`);
      }
    }
  }

  // ---------------------------------------------------------------- code (item 2)
  let codeHeight = 0;
  for (const pre of main.querySelectorAll('.cell_input pre, div[class*="highlight-"] pre')) {
    if (pre.closest('.tag_hide-input, .tag_hide-cell, details.hide, .cell_output')) continue;
    if (pre.closest('.cell_input')) codeHeight += pre.getBoundingClientRect().height;
    const over = px(pre.scrollWidth - pre.clientWidth);
    if (over > 1) {
      const longest = pre.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      R.code.push(`code ${pre.closest('.cell_input') ? 'cell' : 'block'} needs horizontal ` +
                  `scrolling (${over} px): longest line ` +
                  `${longest.length} chars: ${JSON.stringify(short(longest, 60))}`);
    }
  }
  const pageHeight = main.getBoundingClientRect().height;
  if (main.querySelector('.cell') && codeHeight > MAX_CODE_SHARE * pageHeight)
    R.code.push(`visible code is ${px(100 * codeHeight / pageHeight)}% of the page's height ` +
                `(${px(codeHeight)} of ${px(pageHeight)} px; at most ${100 * MAX_CODE_SHARE}%)`);

  // ---------------------------------------------------------------- glued numbers (item 4)
  const weightOf = el => parseInt(getComputedStyle(el).fontWeight, 10);
  for (const g of main.querySelectorAll('.pasted-text')) {
    let b = g.parentElement;
    while (b && b !== main && getComputedStyle(b).display.startsWith('inline')) b = b.parentElement;
    const body = b ? weightOf(b) : 400;
    if (weightOf(g) > Math.min(body, 500))
      R.numbers.push(`glued ${JSON.stringify(short(g.textContent, 30))} is bold ` +
                     `(weight ${weightOf(g)}, text ${body})`);
  }
  const ENOTE = /(?:^|[^\w.])([-+\u2212]?\d+(?:\.\d+)?[eE][-+\u2212]?\d+)(?![\w.])/;
  const skip = 'pre, code, script, style, mjx-container, .cell_input, .cell_output .output, ' +
               'kbd, samp, .headerlink, svg';
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const m = ENOTE.exec(n.textContent);
    if (m) R.numbers.push(`number in E notation in the text: ${m[1]} in ` +
                          `${JSON.stringify(short(n.textContent, 60))}`);
  }
  return R;
}
""".replace("MIN_SHOWN", str(MIN_SHOWN_FRACTION)).replace("MIN_FONT_PX", str(MIN_FIGURE_FONT_PX)) \
   .replace("MAX_CODE_SHARE", str(MAX_CODE_SHARE))


def _measure_quality_on(p, css: str | None = None, chrome: dict | None = None
                        ) -> dict[str, list[str]]:
    """:func:`measure_quality` on a page already open and settled (light theme, desktop),
    which it leaves in the dark theme at phone width. ``chrome``: a dict that receives the
    header band and search controls at phone width."""
    if css:
        p.add_style_tag(content=css)
    p.evaluate(_WAIT_FOR_MATHJAX)
    p.evaluate(_EXPAND_ALL)
    p.wait_for_timeout(300)
    out = p.evaluate(_QUALITY, {"phone": False, "dark": False})
    p.set_viewport_size(PHONE)
    p.wait_for_timeout(500)
    phone = p.evaluate(_QUALITY, {"phone": True, "dark": False})
    if chrome is not None:
        chrome[PHONE["width"]] = p.evaluate(_CHROME)
    out["equations"] += [f"[{PHONE['width']} px] {m}" for m in phone["equations"]]
    # the dark theme's figure cards (a filter and a background: not a matter of width)
    # are read at the phone width the page is at: one relayout fewer than at 1280 px
    p.evaluate("document.documentElement.dataset.theme = 'dark'")
    p.wait_for_timeout(300)
    dark = p.evaluate(_QUALITY, {"phone": False, "dark": True})
    out["figures"] += [f"[dark] {m}" for m in dark["figures"]]
    return out  # the page is left dark at 390 px: every caller closes it next


def measure_quality(browser, site: str, page: str, css: str | None = None
                    ) -> dict[str, list[str]]:
    """Measure ``page`` at desktop and phone widths and in the dark theme.

    Returns ``{check: [problem, ...]}`` for the checks in :data:`QUALITY_CHECKS` (an empty
    list where the page passes), plus ``"load"`` for console errors and failed requests.
    ``css``: a style sheet added to the page first (the tests of the checks use it).
    """
    context, p, problems = _open(browser, site, page, "light")
    try:
        problems += _settle(p)
        out = _measure_quality_on(p, css)
    finally:
        context.close()
    out["load"] = problems
    return out


_QUALITY_CACHE: dict[tuple[str, str], dict[str, list[str]]] = {}


@pytest.mark.parametrize("check", QUALITY_CHECKS)
@pytest.mark.parametrize("page", [f"{d}.html" for d in TOC])
def test_page_quality(browser, site, page, check):
    """Issue 14, items 1-4, on every page of the book: ``equations`` (every display
    equation fits its box at 1280 px and, at 390 px, stays on screen and scrolls inside its
    own box; inline math stays inside its paragraph), ``noise`` (no output that is a bare
    value, a repr, a warning, a path, a log line or a printed dict), ``figures`` (every
    output image is in a numbered figure with a caption and descriptive alt text, shown at
    >= 90% of its drawn size, SVG or 2x raster, SVG text >= 11 px on screen, a white
    undimmed card in the dark theme), ``code`` (visible code cells and outputs fit the
    column without scrolling; visible code under a fifth of the page's height), ``numbers``
    (glued numbers in the text's weight; no E notation such as 2e-15 in the text)."""
    found = visit(browser, site, page, "light")["quality"][check]
    assert not found, f"{page}: {len(found)} {check} problem(s):\n  " + "\n  ".join(found)


def _first_visit_problems(browser, site, page, theme):
    context, p, problems = _open(browser, site, page, theme, first_visit=True)
    try:
        problems += _settle(p)
        shown = p.evaluate("document.documentElement.dataset.theme")
    finally:
        context.close()
    if shown != theme:
        problems.append(f"system theme {theme} but the page shows {shown!r}")
    return problems


@pytest.mark.parametrize("theme", ["dark"])
@pytest.mark.parametrize("page", [p for p in DARK_SAMPLE if p.removesuffix(".html") in TOC])
def test_first_visit_has_no_console_error(browser, site, page, theme):
    """A first visit (no theme stored yet) follows the system theme without the console
    error "Got invalid theme mode: . Resetting to auto." (html_context default_mode)."""
    v = visit(browser, site, page, theme)       # the dark visit is a first visit
    problems = list(v["load"])
    if v["theme"] != theme:
        problems.append(f"system theme {theme} but the page shows {v['theme']!r}")
    assert not problems, "\n".join(problems)


_CHROME = """
() => {
  const visible = el => el.checkVisibility() && el.getBoundingClientRect().height > 0;
  const header = document.querySelector('.bd-header');
  return {
    header: header && visible(header) ? Math.round(header.getBoundingClientRect().height) : 0,
    searches: Array.from(document.querySelectorAll(
        '.search-button-field, .search-button, .bd-search')).filter(visible).length,
  };
}
"""


@pytest.mark.parametrize("width", [DESKTOP["width"], PHONE["width"]])
@pytest.mark.parametrize("page", [f"{TOC[0]}.html", f"{NOTEBOOKS[0]}.html" if NOTEBOOKS
                                  else f"{TOC[0]}.html"])
def test_no_empty_header_band(browser, site, page, width):
    """No top band holding only a second search button (pydata-sphinx-theme 0.17's navbar):
    at most one search control is visible, and no site header above the article."""
    v = visit(browser, site, page, "light")  # measured at both widths in the page's visit
    assert not v["load"], "\n".join(v["load"])
    chrome = v["chrome"][width]
    assert chrome["header"] == 0, f"a {chrome['header']} px header band at {width} px"
    assert chrome["searches"] <= 1, f"{chrome['searches']} search controls at {width} px"


@pytest.mark.parametrize("page", [f"{TOC[0]}.html"])  # grouped with the page's visit
def test_chapter_map_links_every_chapter(browser, site, page):
    v = visit(browser, site, page, "light")
    assert not v["load"], "\n".join(v["load"])
    targets = v["map"]
    chapters = {Path(d).name for d in NOTEBOOKS}
    assert {t.removesuffix(".html") for t in targets} == chapters, targets


_CITATIONS = """
() => Array.from(document.querySelectorAll('main a[href*="bibliography.html#"], '
                                           + 'main a.reference.internal[href^="#id"]'))
  .filter(a => a.closest('span[id^="id"], .bibtex, p, li, td, figcaption, dd'))
  .map(a => [a.textContent.trim(), a.getAttribute('href').replace(/^.*#/, '#')])
"""


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_citations_are_told_apart(browser, site, doc):
    """Each citation text ([Su, 2021a]) leads to one bibliography entry, and each entry is
    cited by one text: different articles never share a label."""
    v = visit(browser, site, f"{doc}.html", "light")
    assert not v["load"], "\n".join(v["load"])
    cites = [c for c in v["citations"] if c[0] and not c[0].startswith("[")]
    cites = [c for c in cites if re.search(r"\d{4}[a-z]?$|n\.d\.", c[0])]
    assert cites, f"{doc}: no author-year citations found"
    by_text: dict[str, set[str]] = {}
    by_target: dict[str, set[str]] = {}
    for text, target in cites:
        by_text.setdefault(text, set()).add(target)
        by_target.setdefault(target, set()).add(text)
    shared = {t: sorted(v) for t, v in by_text.items() if len(v) > 1}
    assert not shared, f"{doc}: one citation text for several entries: {shared}"
    split = {t: sorted(v) for t, v in by_target.items() if len(v) > 1}
    assert not split, f"{doc}: one entry cited under several texts: {split}"


def _search_snippets(browser, site, query):
    context, p, problems = _open(browser, site, f"search.html?q={query}", "light")
    try:
        p.wait_for_function(
            "() => document.querySelectorAll('ul.search li p.context').length > 0",
            timeout=NAV_TIMEOUT_MS)
        p.wait_for_timeout(500)
        snippets = p.eval_on_selector_all("ul.search li p.context",
                                          "ps => ps.map(p => p.textContent)")
    finally:
        context.close()
    return snippets, problems


def _snippet_problems(snippets):
    bad = []
    for text in snippets:
        m = RAW_TEX.search(text)
        if m:
            bad.append(f"raw TeX {m.group(0)!r} in {text[:120]!r}")
        if ".pdf" in text or "Download" in text:
            bad.append(f"button labels in {text[:120]!r}")
    return bad


@pytest.mark.parametrize("query", ["Chernoff", "RoPE"])
def test_search_snippets_are_clean(browser, site, query):
    snippets, problems = _search_snippets(browser, site, query)
    assert not problems, "\n".join(problems)
    assert snippets and not _snippet_problems(snippets), _snippet_problems(snippets)


def test_search_works_offline(browser, site):
    context, p, problems = _open(browser, site, "search.html?q=Johnson", "light")
    try:
        p.wait_for_function(
            "() => document.querySelectorAll('ul.search li, #search-results li').length > 0",
            timeout=NAV_TIMEOUT_MS)
        hits = p.eval_on_selector_all("ul.search li a, #search-results li a",
                                      "as => as.map(a => a.getAttribute('href'))")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    assert any("jl_theory" in h for h in hits), hits


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_launch_and_download_buttons(browser, site, doc):
    """Binder opens the chapter's source; Colab and the download button get its .ipynb."""
    v = visit(browser, site, f"{doc}.html", "light")
    assert not v["load"], "\n".join(v["load"])
    links, has_thebe = v["buttons"]["links"], v["buttons"]["thebe"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    org_repo = urlsplit(config["repository"]["url"].rstrip("/")).path.strip("/")

    binder = [h for h in links if "mybinder.org" in h]
    assert binder, f"no Binder button on {doc}: {links}"
    # Binder builds the environment from the source branch and nbgitpuller pulls the
    # published notebook from the pages branch (_ext/notebooks.py, binder_url)
    assert f"/v2/gh/{org_repo}/" in binder[0], binder[0]
    pull = unquote(unquote(binder[0].split("urlpath=", 1)[1]))
    name = org_repo.split("/")[-1]
    m_pull = re.fullmatch(rf"git-pull\?repo=https://github\.com/{re.escape(org_repo)}"
                          rf"&branch=([^&]+)&urlpath=lab/tree/{re.escape(name)}/(notebooks/.+\.ipynb)",
                          pull)
    assert m_pull, pull
    assert m_pull.group(1) == config["sphinx"]["config"].get("kexue_pages_branch", "gh-pages")
    assert (SITE / m_pull.group(2)).exists(), f"Binder opens {m_pull.group(2)}, not in the site"

    colab = [h for h in links if "colab.research.google.com" in h]
    assert colab, f"no Colab button on {doc}: {links}"
    m = re.search(rf"/github/{re.escape(org_repo)}/blob/[^/]+/(notebooks/.+\.ipynb)$", colab[0])
    assert m, colab[0]
    assert has_thebe, "no Live Code (Thebe) button"

    ipynb = [h for h in links if h.endswith(".ipynb")]
    assert ipynb, f"no .ipynb download on {doc}: {links}"
    for rel in (m.group(1), f"_sources/{doc}.ipynb"):
        nb = _published_notebook(site, rel)
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and any(c.get("outputs") for c in code), f"{rel} has no outputs"
        # widgets are kexue_helpers.widgets.explorable: the published notebook keeps each
        # one's default frame (image/png, seen before any cell runs) and drops the frames
        # only the site's player uses (kexue_helpers.widgets.strip_frames)
        widgets = [c for c in code if "explorable(" in "".join(c["source"])]
        assert widgets, f"{rel}: no explorable widget cell"
        for c in widgets:
            data = [o.get("data", {}) for o in c.get("outputs", [])]
            assert any("image/png" in d for d in data), f"{rel}: a widget has no figure"
            assert not any(k.startswith("application/vnd.kexue") for d in data for k in d), \
                f"{rel}: a widget's precomputed frames were published"


def _published_notebook(site: str, rel: str) -> dict:
    with urllib.request.urlopen(urljoin(site, rel), timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_published_notebook_installs_the_helpers(site, doc):
    """In Colab (or any kernel without the helpers) the first cell installs them from
    ``repository.url``: the chapter's first code cell is the install cell (README)."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    nb = _published_notebook(site, f"notebooks/{doc}.ipynb")
    first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert "import kexue_helpers" in first and f"git+{repo.rstrip('/')}" in first, \
        f"{doc}: the first code cell must be the install cell (copy it from book/jl_theory.md)"


# --------------------------------------------------------------------------- the checks, checked
# The page-quality checks run on a two-page fixture book (tests/fixtures/site, built here
# with the site's own extension and CSS): good.md follows the chapter recipe and must pass
# every check; bad.md breaks each rule and must fail each check for the right reason.

FIXTURE = ROOT / "tests" / "fixtures" / "site"
FIXTURE_HTML = FIXTURE / "_build" / "html"
FIXTURE_INPUTS = [*FIXTURE.glob("*.md"), *FIXTURE.glob("*.yml"), ROOT / "_ext" / "page_assets.py",
                  ROOT / "static" / "kexue.css", ROOT / "kexue_helpers" / "plotting.py",
                  ROOT / "kexue_helpers" / "book.py"]

# CSS that undoes the site's fixes: with it, the compliant page must fail the checks that
# depend on the site's styles (so those checks are shown able to fail).
BREAKING_CSS = """
div.math mjx-container { overflow: hidden !important; }
html[data-theme="dark"] .bd-content div.cell_output img,
html[data-theme="dark"] .bd-content figure img { filter: brightness(.8) contrast(1.2) !important; }
.bd-content span.pasted-text { font-weight: bold !important; }
.bd-content .cell_input pre { font-size: 40px !important; }
"""


@pytest.fixture(scope="session")
def fixture_site():
    stamp = FIXTURE_HTML / "bad.html"
    newest = max(p.stat().st_mtime for p in FIXTURE_INPUTS)
    if not stamp.exists() or stamp.stat().st_mtime < newest:
        jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        run = subprocess.run([jb, "build", str(FIXTURE), "--all"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0 or not stamp.exists():
            pytest.fail(f"building the fixture book failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    with serving(FIXTURE_HTML) as url:
        yield url


def _measure_fixture(browser, url, page, css=None):
    key = (url, page, css)
    if key not in _QUALITY_CACHE:
        _QUALITY_CACHE[key] = measure_quality(browser, url, page, css=css)
    return _QUALITY_CACHE[key]


def test_quality_checks_pass_on_a_compliant_page(browser, fixture_site):
    found = _measure_fixture(browser, fixture_site, "good.html")
    problems = [f"{k}: {m}" for k in (*QUALITY_CHECKS, "load") for m in found[k]]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("check, expected", [
    ("equations", "wider than its box"),
    ("noise", "a bare value"),
    ("noise", "a repr"),
    ("noise", "stderr"),
    ("noise", "a warning"),
    ("noise", "a path"),
    ("noise", "a log line"),
    ("noise", "a printed dict"),
    ("figures", "not in a numbered figure"),
    ("figures", "does not describe the figure"),
    ("figures", "draw it at COLUMN_WIDTH"),
    ("figures", "raster at 1.00x"),
    ("code", "needs horizontal scrolling"),
    ("code", "of the page's height"),
    ("numbers", "E notation in the text: 3.2e-05"),
    ("numbers", "is bold"),
])
def test_quality_checks_catch_each_defect(browser, fixture_site, check, expected):
    found = _measure_fixture(browser, fixture_site, "bad.html")[check]
    assert any(expected in m for m in found), f"{check} missed {expected!r}; found: {found}"


@pytest.mark.parametrize("page, check, expected", [
    ("bad.html", "equations", "[390 px]"),
    ("good.html", "figures", "[dark]"),
    ("good.html", "numbers", "is bold"),
    ("good.html", "code", "needs horizontal scrolling"),
])
def test_quality_checks_depend_on_the_site_css(browser, fixture_site, page, check, expected):
    found = _measure_fixture(browser, fixture_site, page, css=BREAKING_CSS)[check]
    assert any(expected in m for m in found), f"{check} missed {expected!r}; found: {found}"


def test_a_wide_equation_scrolls_on_a_phone(browser, fixture_site):
    """bad.html's equation is too wide at 1280 px (a failure there); at 390 px it is wider
    still, but with the site's CSS it scrolls inside its own box: no phone problem."""
    found = _measure_fixture(browser, fixture_site, "bad.html")["equations"]
    assert any("wider than its box" in m for m in found), found
    assert not [m for m in found if "[390 px]" in m], found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_first_visit_on_the_fixture(browser, fixture_site, theme):
    problems = _first_visit_problems(browser, fixture_site, "good.html", theme)
    assert not problems, "\n".join(problems)


def test_search_snippets_are_clean_on_the_fixture(browser, fixture_site):
    snippets, problems = _search_snippets(browser, fixture_site, "Compute")
    assert not problems, "\n".join(problems)
    assert any("∫_0^1 e^-x dx" in s for s in snippets), snippets
    assert not _snippet_problems(snippets), _snippet_problems(snippets)


def test_glued_numbers_are_typeset(browser, fixture_site):
    context, p, problems = _open(browser, fixture_site, "good.html", "light")
    try:
        glued = p.eval_on_selector_all(".pasted-text", "es => es.map(e => e.innerHTML)")
        numbers = p.eval_on_selector_all("main .glued-number:not(.pasted-text)",
                                         "es => es.map(e => e.innerHTML)")
    finally:
        context.close()
    assert "2.0\u202f\u00d7\u202f10<sup>\u221215</sup>" in glued, glued
    assert "\u22120.25" in glued and "20000" in glued, glued
    assert "3.6\u202f\u00d7\u202f10<sup>\u22121</sup>" in numbers, numbers
    assert "\u22120.5" in numbers, numbers
    assert "2.5\u202f\u00d7\u202f10<sup>\u22123</sup>" in numbers, numbers  # inline glue:md
