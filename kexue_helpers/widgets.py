"""Widgets that work on the static site and live in Jupyter, from one call.

A chapter writes a widget once::

    from kexue_helpers.widgets import Control, explorable

    def draw(fig, *, eps, n):
        ax = fig.subplots()
        ...

    explorable(draw,
               [Control("eps", [0.1, 0.2, 0.3], default=0.2, label="ε"),
                Control("n", [50, 100, 200], default=100)],
               key="jl-bounds", caption="What to see.", alt="What the figure shows.",
               figsize=(6.4, 3.2))

and gets

- **in the book** (the static site: no kernel, no network): every combination of the
  control values is drawn once when the chapter is executed for the build, and a small
  offline player (``static/widgets/explorable.js``) swaps these precomputed frames when the
  reader moves a control. The widget is a numbered figure with its caption and alt text;
  with JavaScript off it is the default frame as a static figure;
- **in Jupyter, Binder or Colab**: a live ``ipywidgets`` widget (a slider per numeric
  control, a dropdown per string control, and the figure drawn by ``draw`` for the current
  setting).

How the call knows which to give
--------------------------------
The book's Sphinx extension ``_ext/widgets.py`` sets the environment variable
``KEXUE_WIDGETS=static`` in the build process before any chapter is executed; the kernels
the build starts inherit it. :func:`explorable` then draws every frame and displays one
output whose MIME bundle carries the frames (``application/vnd.kexue.explorable+json``,
which the extension turns into the numbered figure and the player), the default frame
(``image/png``, what Jupyter and Colab show when they open the executed notebook) and a
line of text. Anywhere else (no variable, or ``KEXUE_WIDGETS=live``) it draws only what the
reader asks for, live. An environment variable, rather than one bundle holding both the
frames and a widget view, because the live widget would cost nothing to leave out of the
build while the frames (up to 64 drawings) would slow down every live session and every
``pytest --nbval`` run, and because widget views stored in a notebook make myst-nb load the
3.6 MB widget manager on the page.

Both paths draw through the same function (:meth:`Explorable.frame_png`): a fresh
:class:`matplotlib.figure.Figure` of size ``figsize`` (constrained layout), saved at twice
the display resolution and quantised to at most 256 colours, so the live widget shows
exactly the pixels of the static frame for the same setting (``tests/test_widgets.py``
checks this by driving the ipywidgets controls).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["Control", "Explorable", "MAX_FRAMES", "MIME_TYPE", "MODE_ENV", "explorable",
           "static_mode", "strip_frames"]

#: MIME type of the static widget's output (read by ``_ext/widgets.py``).
MIME_TYPE = "application/vnd.kexue.explorable+json"
#: Environment variable the book build sets to ``static``; anything else means live.
MODE_ENV = "KEXUE_WIDGETS"
#: The most frames (combinations of control values) a widget may have.
MAX_FRAMES = 64
#: CSS pixels per inch of figure size (CSS's own inch, as ``kexue_helpers.plotting`` draws
#: the book's figures): a 6.4 in wide figure is shown 614 px wide.
DISPLAY_DPI = 96
#: Frames are drawn at this multiple of the display resolution (sharp on HiDPI screens).
FRAME_SCALE = 2
#: The widest figure that fits the text column, in inches.
MAX_WIDTH_IN = 6.8
#: Colours a quantised frame keeps.
PALETTE_COLOURS = 256
_KEY = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _plain(v: Any) -> Any:
    """A NumPy scalar as the Python number it holds (JSON and ipywidgets want those)."""
    item = getattr(v, "item", None)
    if callable(item) and not isinstance(v, (str, int, float)):
        try:
            return item()
        except (TypeError, ValueError):
            return v
    return v


def _format(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return f"{v:.6g}"


class Control:
    """One control of an :func:`explorable` widget: a finite list of values.

    Parameters
    ----------
    name : str
        The keyword argument of ``draw`` that receives the value (a Python identifier).
    values : sequence of numbers, or sequence of str
        The values the reader can choose, in the order shown: at least two, all distinct,
        all numbers (a slider over the list) or all strings (a dropdown).
    default : number or str, optional
        The value shown first; one of ``values``. Default: the first value.
    label : str, optional
        The control's label on the page (plain text, e.g. ``"ε"``). Default: ``name``.

    Raises
    ------
    TypeError
        If ``name`` or ``label`` is not a string, or ``values`` is not a sequence.
    ValueError
        If ``name`` is not an identifier, ``values`` has fewer than two values, repeats one,
        mixes numbers and strings, holds something else or a non-finite number, or
        ``default`` is not one of ``values``.

    Examples
    --------
    >>> c = Control("eps", [0.1, 0.2, 0.3], default=0.2, label="ε")
    >>> c.kind, c.default, c.default_index, c.labels
    ('number', 0.2, 1, ('0.1', '0.2', '0.3'))
    """

    def __init__(self, name: str, values: Sequence[Any], default: Any = None,
                 label: str | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Control: name must be a str; got {name!r} "
                            f"({type(name).__name__})")
        if not _NAME.match(name):
            raise ValueError(f"Control: name must be a Python identifier (the keyword "
                             f"argument of draw); got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and \
                not hasattr(values, "__array__"):
            raise TypeError(f"Control {name!r}: values must be a list or tuple of numbers or "
                            f"of strings; got {values!r} ({type(values).__name__})")
        vals = tuple(_plain(v) for v in values)
        if len(vals) < 2:
            raise ValueError(f"Control {name!r}: values must hold at least two values; "
                             f"got {list(vals)!r}")
        if all(isinstance(v, str) for v in vals):
            kind = "string"
        elif all(_is_number(v) for v in vals):
            kind = "number"
            bad = [v for v in vals if not math.isfinite(v)]
            if bad:
                raise ValueError(f"Control {name!r}: values must be finite numbers; "
                                 f"got {bad[0]!r} in {list(vals)!r}")
        else:
            odd = next((v for v in vals if not (isinstance(v, str) or _is_number(v))), None)
            what = (f"{odd!r} ({type(odd).__name__})" if odd is not None
                    else "a mix of numbers and strings")
            raise ValueError(f"Control {name!r}: values must be all numbers or all strings; "
                             f"got {what} in {list(vals)!r}")
        seen: set = set()
        for v in vals:
            if v in seen:
                raise ValueError(f"Control {name!r}: values must be distinct; {v!r} appears "
                                 f"more than once in {list(vals)!r}")
            seen.add(v)
        if default is None:
            default = vals[0]
        default = _plain(default)
        idx = next((i for i, v in enumerate(vals)
                    if v == default and isinstance(v, str) == isinstance(default, str)), None)
        if idx is None:
            raise ValueError(f"Control {name!r}: default must be one of the values "
                             f"{list(vals)!r}; got {default!r}")
        if label is None:
            label = name
        if not isinstance(label, str) or not label.strip():
            raise TypeError(f"Control {name!r}: label must be a non-empty str; got {label!r}")
        labels = tuple(_format(v) for v in vals)
        if len(set(labels)) < len(labels):  # e.g. 1e-7 and 1.0000001e-7
            labels = tuple(repr(v) for v in vals)
        self.name = name
        self.values = vals
        self.kind = kind
        self.default_index = idx
        self.default = vals[idx]
        self.label = label
        self.labels = labels

    def index(self, value: Any) -> int:
        """Position of ``value`` among the control's values (``ValueError`` if absent)."""
        for i, v in enumerate(self.values):
            if v == value and isinstance(v, str) == isinstance(value, str):
                return i
        raise ValueError(f"Control {self.name!r}: {value!r} is not one of the values "
                         f"{list(self.values)!r}")

    def to_json(self) -> dict[str, Any]:
        """The control as the page's player reads it."""
        return {"name": self.name, "label": self.label, "kind": self.kind,
                "values": list(self.values), "labels": list(self.labels),
                "default": self.default_index}

    def __repr__(self) -> str:
        return (f"Control({self.name!r}, {list(self.values)!r}, default={self.default!r}, "
                f"label={self.label!r})")


def _raw_size(n_bytes: int, figsize: tuple[float, float]) -> tuple[int, int]:
    """Width and height of matplotlib's raw RGBA output (it truncates fractional pixels)."""
    dpi = DISPLAY_DPI * FRAME_SCALE
    w0, h0 = figsize[0] * dpi, figsize[1] * dpi
    for w in (int(w0), int(w0) + 1, int(w0) - 1, round(w0)):
        if w > 0 and n_bytes % (4 * w) == 0 and abs(n_bytes // (4 * w) - h0) < 2:
            return w, n_bytes // (4 * w)
    raise RuntimeError(f"cannot infer the frame's size from {n_bytes} bytes at {figsize}")


def _render_png(draw: Callable[..., Any], params: dict[str, Any],
                figsize: tuple[float, float]) -> bytes:
    """Draw one frame on a fresh figure and encode it as a quantised PNG (deterministic)."""
    from matplotlib.figure import Figure
    from PIL import Image

    import matplotlib as mpl

    # every frame exactly figsize (never cropped to its contents: frames must not jump)
    with mpl.rc_context({"savefig.bbox": "standard", "savefig.transparent": False}):
        fig = Figure(figsize=figsize, dpi=DISPLAY_DPI, layout="constrained")
        draw(fig, **params)
        buf = io.BytesIO()
        # raw RGBA pixels: no PNG written by matplotlib only to be decoded again
        fig.savefig(buf, format="rgba", dpi=DISPLAY_DPI * FRAME_SCALE)
    data = buf.getvalue()
    rgba = Image.frombuffer("RGBA", _raw_size(len(data), figsize), data, "raw", "RGBA", 0, 1)
    opaque = rgba.getextrema()[3][0] == 255
    # fast octree: ~20 ms a frame (median cut: ~15x slower for a barely smaller file)
    pal = (rgba.convert("RGB") if opaque else rgba).quantize(
        PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True)
    return out.getvalue()


@contextmanager
def _no_frontend() -> Iterator[None]:
    """Create ipywidgets whose comms send nothing (the build's own check of the live path:
    no widget state reaches the executed notebook, so no widget manager on the page)."""
    import comm

    saved = comm.create_comm
    comm.create_comm = lambda *a, **k: comm.DummyComm(*a, **k)
    try:
        yield
    finally:
        comm.create_comm = saved


class Explorable:
    """A figure drawn by ``draw`` over the grid of its controls' values.

    :func:`explorable` is the one call a chapter makes; this class is what it builds, for
    tests and for the book's extension. Parameters as in :func:`explorable`.

    Attributes
    ----------
    shape : tuple of int
        Number of values of each control; frames are numbered in row-major order of this
        shape (the last control varies fastest).
    """

    def __init__(self, draw: Callable[..., Any], controls: Sequence[Control], *, key: str,
                 caption: str, alt: str,
                 figsize: tuple[float, float] = (6.4, 3.2)) -> None:
        if not callable(draw):
            raise TypeError(f"explorable: draw must be a function draw(fig, **params); got "
                            f"{draw!r}")
        if isinstance(controls, Control):
            controls = [controls]
        if not isinstance(controls, Sequence) or not controls or \
                not all(isinstance(c, Control) for c in controls):
            raise TypeError(f"explorable: controls must be a non-empty list of Control; got "
                            f"{controls!r}")
        names = [c.name for c in controls]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"explorable: controls must have distinct names; {dup!r} "
                             f"appears more than once in {names!r}")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"explorable: key must be '<chapter-short>-<what>' (lower-case "
                             f"letters, digits and hyphens, at least one hyphen, unique in "
                             f"the book); got {key!r}")
        for arg, text, what in (("caption", caption, "what the reader should see"),
                                ("alt", alt, "a description of the default figure")):
            if not isinstance(text, str) or len(text.split()) < 4:
                raise ValueError(f"explorable: {arg} must be a sentence of at least four "
                                 f"words ({what}); got {text!r}")
        try:
            w, h = (float(_plain(x)) for x in figsize)
        except (TypeError, ValueError):
            raise ValueError(f"explorable: figsize must be (width, height) in inches; got "
                             f"{figsize!r}") from None
        if not (0 < w <= MAX_WIDTH_IN and 0 < h <= 2 * MAX_WIDTH_IN):
            raise ValueError(f"explorable: figsize must be (width, height) in inches with "
                             f"0 < width <= {MAX_WIDTH_IN} (the text column) and "
                             f"0 < height <= {2 * MAX_WIDTH_IN}; got {figsize!r}")
        shape = tuple(len(c.values) for c in controls)
        n = math.prod(shape)
        if n > MAX_FRAMES:
            sizes = " x ".join(f"{c.name}: {len(c.values)}" for c in controls)
            raise ValueError(f"explorable: controls make a grid of {n} frames ({sizes}); at "
                             f"most {MAX_FRAMES} are allowed: use fewer values per control")
        import inspect

        try:
            inspect.signature(draw).bind(None, **{c.name: c.default for c in controls})
        except TypeError as e:
            raise TypeError(f"explorable: draw must accept draw(fig, {', '.join(names)}) "
                            f"(one keyword argument per control); {e}") from None
        except ValueError:  # no signature (a builtin): find out when drawing
            pass
        self.draw = draw
        self.controls = tuple(controls)
        self.key = key
        self.caption = caption
        self.alt = alt
        self.figsize = (w, h)
        self.shape = shape
        self.n_frames = n
        self._cache: dict[int, bytes] = {}

    # ----------------------------------------------------------------- the grid
    @property
    def default_setting(self) -> dict[str, Any]:
        """Each control's name mapped to its default value (the setting shown first)."""
        return {c.name: c.default for c in self.controls}

    def settings(self) -> list[dict[str, Any]]:
        """Every setting, in frame order (row-major, the last control fastest)."""
        return [dict(zip((c.name for c in self.controls), combo))
                for combo in itertools.product(*(c.values for c in self.controls))]

    def frame_index(self, setting: dict[str, Any]) -> int:
        """The frame number of ``setting`` (a value for every control)."""
        missing = [c.name for c in self.controls if c.name not in setting]
        extra = [k for k in setting if k not in {c.name for c in self.controls}]
        if missing or extra:
            raise ValueError(f"setting must give a value for each control "
                             f"{[c.name for c in self.controls]}; got {setting!r}")
        idx = 0
        for c in self.controls:
            idx = idx * len(c.values) + c.index(setting[c.name])
        return idx

    def frame_png(self, setting: dict[str, Any]) -> bytes:
        """The frame for ``setting``, drawn by ``draw`` (cached): what both paths show."""
        idx = self.frame_index(setting)
        if idx not in self._cache:
            params = {c.name: c.values[c.index(setting[c.name])] for c in self.controls}
            self._cache[idx] = _render_png(self.draw, params, self.figsize)
        return self._cache[idx]

    @property
    def css_size(self) -> tuple[int, int]:
        """Width and height in CSS pixels at which the figure is shown."""
        return (round(self.figsize[0] * DISPLAY_DPI), round(self.figsize[1] * DISPLAY_DPI))

    def check_setting(self) -> dict[str, Any]:
        """A setting away from the default (every control moved, where it can be), which the
        build renders through the live widget for the browser test to compare against."""
        out = {}
        for c in self.controls:
            i = len(c.values) - 1 if c.default_index != len(c.values) - 1 else 0
            out[c.name] = c.values[i]
        return out

    # ----------------------------------------------------------------- live
    def live_widget(self):
        """The live widget: one control per :class:`Control`, the figure, the caption.

        Returns
        -------
        ipywidgets.VBox
            With attributes ``controls`` (name -> control widget) and ``image`` (the
            ``ipywidgets.Image`` showing :meth:`frame_png` of the current setting).
        """
        import ipywidgets as W

        style = {"description_width": "initial"}
        wide = W.Layout(width="100%", max_width="560px")
        widgets = {}
        for c in self.controls:
            if c.kind == "number":
                widgets[c.name] = W.SelectionSlider(
                    options=list(zip(c.labels, c.values)), value=c.default,
                    description=c.label, continuous_update=True, style=style, layout=wide)
            else:
                widgets[c.name] = W.Dropdown(options=list(c.values), value=c.default,
                                             description=c.label, style=style)
        width, height = self.css_size
        image = W.Image(value=self.frame_png(self.default_setting), format="png",
                        layout=W.Layout(width=f"{width}px", max_width="100%", height="auto"))
        caption = W.HTMLMath(value=f"<p>{html.escape(self.caption)}</p>",
                             layout=W.Layout(max_width=f"{width}px"))

        def update(_change=None):
            image.value = self.frame_png({n: w.value for n, w in widgets.items()})

        for w in widgets.values():
            w.observe(update, names="value")
        box = W.VBox([*widgets.values(), image, caption])
        box.add_class("kexue-explorable")
        box.controls = widgets
        box.image = image
        return box

    # ----------------------------------------------------------------- static
    def static_bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw every frame; return the output's MIME bundle and metadata for the book.

        The bundle's JSON (:data:`MIME_TYPE`) holds the controls, the frames (base64 PNG, in
        frame order), the default frame's number, and one setting away from the default
        drawn through the live widget (``check``), for the browser test. The time taken is
        in the metadata (the bundle itself is deterministic).
        """
        t0, c0 = time.perf_counter(), time.process_time()
        frames = [self.frame_png(s) for s in self.settings()]
        t_frames = time.perf_counter() - t0
        check = self.check_setting()
        self._cache.clear()  # the live path draws the check setting afresh
        with _no_frontend():
            box = self.live_widget()
            try:
                for name, value in check.items():
                    box.controls[name].value = value
                check_png = bytes(box.image.value)
            finally:
                for w in box.children:
                    w.close()
                box.close()
        b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
        default = self.frame_index(self.default_setting)
        width, height = self.css_size
        payload = {
            "version": 1,
            "key": self.key,
            "caption": self.caption,
            "alt": self.alt,
            "width": width,
            "height": height,
            "controls": [c.to_json() for c in self.controls],
            "format": "png",
            "default": default,
            "frames": [b64(f) for f in frames],
            "check": {"setting": check, "index": self.frame_index(check),
                      "png": b64(check_png)},
        }
        bundle = {
            MIME_TYPE: payload,
            "image/png": b64(frames[default]),
            "text/plain": f"<interactive figure {self.key}: {self.n_frames} frames; "
                          f"run the notebook for the live widget>",
        }
        metadata = {"image/png": {"width": width, "height": height},
                    MIME_TYPE: {"seconds": round(time.perf_counter() - t0, 3),
                                "cpu_seconds": round(time.process_time() - c0, 3),
                                "frame_seconds": round(t_frames, 3),
                                "bytes": sum(len(f) for f in frames)}}
        return bundle, metadata


def strip_frames(nb: Any) -> int:
    """Remove the precomputed frames from an executed notebook (in place): what a reader who
    downloads it or opens it in Colab needs is the default frame (``image/png``, kept); the
    frames (:data:`MIME_TYPE`, about 1 MB per widget) only feed the book's player.

    Parameters
    ----------
    nb : dict or nbformat.NotebookNode
        An executed notebook.

    Returns
    -------
    int
        The number of outputs stripped.

    Examples
    --------
    >>> nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
    ...       "data": {MIME_TYPE: {}, "image/png": "...", "text/plain": "..."}}]}]}
    >>> strip_frames(nb), sorted(nb["cells"][0]["outputs"][0]["data"])
    (1, ['image/png', 'text/plain'])
    """
    n = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if MIME_TYPE in data:
                del data[MIME_TYPE]
                (out.get("metadata") or {}).pop(MIME_TYPE, None)
                n += 1
    return n


def static_mode() -> bool:
    """Whether :func:`explorable` makes the book's static widget (``KEXUE_WIDGETS=static``)."""
    return os.environ.get(MODE_ENV, "").strip().lower() == "static"


def explorable(draw: Callable[..., Any], controls: Sequence[Control], *, key: str,
               caption: str, alt: str, figsize: tuple[float, float] = (6.4, 3.2)) -> None:
    """Show a figure the reader explores with controls: live in Jupyter, precomputed in the book.

    Parameters
    ----------
    draw : callable
        ``draw(fig, **params)`` draws on a fresh :class:`matplotlib.figure.Figure` (size
        ``figsize``, constrained layout) for one value of each control, passed by name.
        Cheap (well under 0.2 s): precompute expensive results outside it.
    controls : list of Control
        The controls, in the order shown. The product of their numbers of values (the
        frames) is at most :data:`MAX_FRAMES` (64); aim for 40 or fewer.
    key : str
        Unique in the book, ``"<chapter-short>-<what>"``; also the figure's label for
        ``{numref}`` and its HTML id.
    caption : str
        What the reader should see when moving the controls (MyST: ``$math$`` allowed).
    alt : str
        Alt text: a description of the default figure for a reader who cannot see it.
    figsize : (float, float), default (6.4, 3.2)
        Size in inches; shown at 96 CSS px per inch, so at most 6.8 in wide (the column).

    Returns
    -------
    None
        The widget is displayed (no ``Out`` value).

    Raises
    ------
    TypeError, ValueError
        Naming the argument, its value and what was expected: a grid over 64 frames, a key
        that is not ``<chapter>-<what>``, a caption or alt under four words, a figure wider than the
        column, a ``draw`` that does not take the controls' names.
    """
    from IPython.display import display

    ex = Explorable(draw, controls, key=key, caption=caption, alt=alt, figsize=figsize)
    if static_mode():
        bundle, metadata = ex.static_bundle()
        display(bundle, raw=True, metadata=metadata)
    else:
        display(ex.live_widget())
