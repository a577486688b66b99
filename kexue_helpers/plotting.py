"""One plot style for the whole book, drawn at the size the page shows it.

A figure is drawn at the width of the book's text column (:data:`COLUMN_WIDTH` inches) and
shown at that size, so the font sizes set here are the sizes the reader sees: at one CSS
inch = 96 px, 10 pt text is 13.3 px on screen and the smallest text (tick labels, legends:
9 pt) is 12 px. Do not draw wider and let the browser shrink the figure: a 11-inch figure
in a 6.8-inch column has its 9 pt legends at 7 px.

The output format is SVG by default (see :func:`use_style`): vector, sharp on every screen
and zoom level, and for the book's line plots and histograms smaller than a pixel-doubled
PNG. Figures with many thousands of markers (dense scatter plots) are smaller as a 2x PNG:
call ``use_style(output="png2x")`` before them, and ``use_style()`` after.

Figures have an opaque white background, drawn on a white card in the dark theme of the
HTML book (``static/kexue.css``), and use Okabe and Ito's colour-blind-safe palette.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl

__all__ = ["COLUMN_WIDTH", "MIN_FONT_PT", "OUTPUTS", "PALETTE", "use_style"]

#: Width of the book's text column, in inches (at 96 CSS px per inch: 653 px, inside the
#: 688 px column at a 1280 px wide window, with room for the figure card's padding).
#: Draw figures at this width, e.g. ``plt.subplots(figsize=(COLUMN_WIDTH, 3.2))``.
COLUMN_WIDTH: float = 6.8

#: The smallest font size the style uses (tick labels and legends), in points.
MIN_FONT_PT: float = 9.0

#: Output formats :func:`use_style` accepts: ``"svg"`` (vector) or ``"png2x"`` (a PNG at
#: twice the resolution, shown at half its pixel size: sharp on high-density screens).
OUTPUTS: tuple[str, ...] = ("svg", "png2x")

#: Okabe & Ito's colour-blind-safe palette (the seven colours, then black).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: One CSS inch is 96 px: a figure at this dpi is shown at its drawn size, pixel for pixel.
_SCREEN_DPI = 96

_STYLE: dict[str, Any] = {
    "figure.figsize": (COLUMN_WIDTH, COLUMN_WIDTH / 2),
    "figure.dpi": _SCREEN_DPI,
    "savefig.dpi": 2 * _SCREEN_DPI,
    # tight layout at every draw: the axes fill the figure, so the figure, cropped to its
    # contents by the inline backend, is still about COLUMN_WIDTH wide
    "figure.autolayout": True,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#111111",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "text.color": "#111111",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "axes.titlesize": 11,
    "figure.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    # reproducible SVG: no date in the metadata, fixed ids
    "svg.hashsalt": "kexue-executable",
}


def _set_output(output: str) -> None:
    """Make the inline backend emit only ``output`` (no-op outside IPython)."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - IPython is a dependency of the book, not the package
        return
    if get_ipython() is None:
        return
    if output == "svg":
        set_matplotlib_formats("svg", metadata={"Date": None})
    else:
        # pixel-doubled PNG; IPython records its display size (half its pixels) as metadata
        set_matplotlib_formats("retina")


def use_style(output: str = "svg") -> None:
    """Apply the book's matplotlib style and choose the inline output format.

    Sets the rcParams (figure width :data:`COLUMN_WIDTH`, fonts of at least
    :data:`MIN_FONT_PT` points, white background, the :data:`PALETTE` colour cycle) and, in
    a Jupyter kernel, the format figures are sent to the page in.

    Parameters
    ----------
    output : {"svg", "png2x"}, default "svg"
        ``"svg"``: vector output, sharp at any zoom and, for line plots and histograms,
        smaller than a 2x PNG. ``"png2x"``: a PNG at twice the resolution (192 dpi), shown
        at its drawn size; smaller for figures with thousands of markers.

    Raises
    ------
    ValueError
        If ``output`` is not one of :data:`OUTPUTS`.

    Examples
    --------
    >>> use_style()
    >>> import matplotlib as mpl
    >>> mpl.rcParams["figure.figsize"] == [COLUMN_WIDTH, COLUMN_WIDTH / 2]
    True
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}")
    mpl.rcParams.update(_STYLE)
    mpl.rcParams["axes.prop_cycle"] = mpl.cycler(color=list(PALETTE))
    _set_output(output)
