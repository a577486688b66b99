"""Helpers for the executable book on Su Jianlin's Scientific Spaces (https://kexue.fm).

The core (device, scale, seeding, validation) lives in :mod:`kexue_helpers.core` and is
re-exported here; each chapter's mathematics has its own module (``jl``, ...).
"""

from .core import (
    DEVICE_ENV,
    SCALE_ENV,
    as_tensor,
    cpu_threads,
    get_device,
    get_scale,
    make_generator,
    scaled,
    seed_everything,
    to_numpy,
)
from .plotting import COLUMN_WIDTH, PALETTE, use_style

__version__ = "0.1.0"

__all__ = [
    "COLUMN_WIDTH",
    "DEVICE_ENV",
    "SCALE_ENV",
    "PALETTE",
    "as_tensor",
    "cpu_threads",
    "get_device",
    "get_scale",
    "make_generator",
    "scaled",
    "seed_everything",
    "to_numpy",
    "use_style",
]
