"""Glue for the book's chapters: put computed numbers into the prose.

Every number in a chapter's text is computed in a code cell and glued (myst-nb ``glue``),
then referenced in the prose as ``{glue:text}`key:.3f```. :func:`glue` converts NumPy and
torch scalars to plain Python numbers first, so the format spec works on them, and returns
``None``, so a cell that ends with a ``glue(...)`` call shows no stray output. Glue calls
belong in cells tagged ``remove-cell``, beside the asserts that check the glued claims.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["glue", "plain"]


def plain(value: Any) -> Any:
    """Convert a NumPy or torch scalar to the Python ``int``/``float``/``bool`` it holds.

    Parameters
    ----------
    value : Any
        A scalar (Python, NumPy, 0-d array or one-element tensor), or anything else, which
        is returned unchanged.

    Returns
    -------
    Any

    Examples
    --------
    >>> plain(np.float64(0.5)), plain(torch.tensor(3))
    (0.5, 3)
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value: Any, *, display: bool = False) -> None:
    """Glue ``value`` under ``name`` for the prose, as a plain Python number if it is one.

    Parameters
    ----------
    name : str
        The glue key, unique within the chapter (prefix it with the chapter's short name).
    value : Any
        The value; NumPy and torch scalars become Python numbers.
    display : bool, default False
        Whether to also show the value as cell output.

    Returns
    -------
    None
        Nothing, so that a cell ending in ``glue(...)`` prints no bare value on the page.
        Keep the value in a variable of its own if the cell needs it again.

    Raises
    ------
    ValueError
        If ``name`` is not a non-empty string.

    Notes
    -----
    Where myst-nb is not installed (Colab, or any environment that runs a published
    notebook without the book's build tools) there is nothing to glue into: the published
    notebook's text already holds the build's values. The call then only checks ``name``
    and does nothing else, so the chapter runs there unchanged.

    Examples
    --------
    >>> glue("demo_value", np.float64(0.25))  # glued as the float 0.25; shows nothing
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    try:
        from myst_nb import glue as _glue
    except ImportError:  # a reader's kernel without the book's build tools
        return None

    value = plain(value)
    _glue(name, value, display=display)
    return None
