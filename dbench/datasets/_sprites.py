"""Rasterising the three dSprites shapes: pure geometry, no dataset bookkeeping.

Coordinates: a canvas pixel ``(row, col)`` covers the square ``[col, col + 1) x [row, row + 1)``; ``x``
grows to the right (columns) and ``y`` grows downwards (rows). Shapes are defined in *unit
coordinates* ``(u, v)`` with ``v`` pointing up on screen, centred on the shape's area centroid, with the
larger side of the bounding box equal to 1 (the square's side). Orientation ``theta`` rotates the shape
counter-clockwise as displayed.

A pixel is on when at least half of its ``SUPERSAMPLE x SUPERSAMPLE`` sub-pixel samples fall inside the
shape (area coverage >= 0.5, estimated), so images are binary like the official ones.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("square", "ellipse", "heart")

#: Sub-pixel samples per pixel side used to decide coverage.
SUPERSAMPLE = 4

# The heart is the classic implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0. Its bounding box is
# [-1.1390, 1.1390] x [-1.0, 1.2361] and its area centroid sits at y = 0.29348 (measured on a fine grid);
# dividing by the width makes the larger bounding-box side 1.
_HEART_WIDTH = 2.2780
_HEART_CENTROID_Y = 0.29348

# Unit-coordinate radius (from the centroid) that contains each shape; used to size render patches.
_SHAPE_RADIUS = {"square": 0.5 * np.sqrt(2.0), "ellipse": 0.5, "heart": 0.58}


def inside_shape(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask: which unit-coordinate points ``(u, v)`` (``v`` up) lie inside ``shape``."""
    if shape == "square":
        return (np.abs(u) <= 0.5) & (np.abs(v) <= 0.5)
    if shape == "ellipse":
        # Semi-axes 1/2 along u and 1/4 along v: an ellipse twice as long as it is wide.
        return (u / 0.5) ** 2 + (v / 0.25) ** 2 <= 1.0
    if shape == "heart":
        x = u * _HEART_WIDTH
        y = v * _HEART_WIDTH + _HEART_CENTROID_Y
        return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0
    raise ValueError(f"shape must be one of {SHAPE_NAMES}; got {shape!r}")


def shape_radius(shape: str) -> float:
    """Radius in unit coordinates of a disc around the centroid that contains ``shape``."""
    return float(_SHAPE_RADIUS[shape])


def render_rotations(
    shape: str,
    size_px: float,
    orientations: np.ndarray,
    canvas: int,
    centre: float,
) -> np.ndarray:
    """Binary uint8 masks ``(len(orientations), canvas, canvas)`` of ``shape`` centred at ``(centre, centre)``.

    ``size_px`` is the shape's size in pixels (the square's side); ``centre`` is in continuous pixel
    coordinates. Only a patch around the centre is sampled, since the rest of the canvas is empty.
    """
    orientations = np.asarray(orientations, dtype=np.float64)
    half = int(np.ceil(shape_radius(shape) * size_px + 1.0))
    lo = max(int(np.floor(centre)) - half, 0)
    hi = min(int(np.ceil(centre)) + half, canvas)
    # Sub-pixel sample offsets inside one pixel, e.g. 1/8, 3/8, 5/8, 7/8 for SUPERSAMPLE = 4.
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    coords = (np.arange(lo, hi)[:, None] + sub[None, :]).ravel() - centre  # (P * S,)
    dx = coords[None, :]  # to the right
    dy = -coords[:, None]  # screen-down rows -> v up
    # Rounding the rotation matrix makes theta = 0 and theta = 2*pi render identically, as in the
    # official file (its first and last orientations are the same angle).
    cos = np.round(np.cos(orientations), 12)
    sin = np.round(np.sin(orientations), 12)
    masks = np.zeros((orientations.size, canvas, canvas), dtype=np.uint8)
    n = hi - lo
    for k in range(orientations.size):
        # Inverse rotation takes screen offsets back to the unrotated shape frame.
        u = (cos[k] * dx + sin[k] * dy) / size_px
        v = (-sin[k] * dx + cos[k] * dy) / size_px
        samples = inside_shape(shape, u, v).reshape(n, SUPERSAMPLE, n, SUPERSAMPLE)
        coverage = samples.sum(axis=(1, 3))
        masks[k, lo:hi, lo:hi] = coverage * 2 >= SUPERSAMPLE * SUPERSAMPLE
    return masks
