"""The direct conv's padding copy (``kernels._pad``) against numpy's pad and slicing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from zoo.runtime.kernels._direct_conv import DirectConv
from zoo.runtime.kernels._pad import pad_phases, pad_phases_serial
from zoo.runtime.kernels._types import ConvGeometry
from zoo.runtime.kernels._wide import Wide

RNG = np.random.default_rng(5)

# (x shape, kernel, strides, pads (t, l, b, r), dilations)
Case = tuple[
    tuple[int, ...], tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, int]
]
GEOMETRIES: list[Case] = [
    ((1, 5, 11, 13), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 6, 14, 15), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # all four phases
    ((1, 4, 15, 16), (3, 3), (2, 2), (0, 1, 2, 0), (1, 1)),  # asymmetric pads
    ((1, 3, 30, 29), (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),  # ResNet's stem
    ((3, 16, 9, 7), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),  # phase (0, 0) only
    ((1, 4, 5, 9), (1, 1), (2, 2), (0, 1, 0, 0), (1, 1)),  # one phase, odd input columns
    ((2, 3, 2, 2), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),  # one phase, one pixel per row
    ((1, 4, 13, 12), (3, 3), (2, 1), (0, 1, 1, 0), (2, 1)),  # row phases only, dilation
    ((1, 3, 12, 12), (3, 2), (1, 2), (2, 2, 2, 2), (2, 3)),  # column phases only
    ((2, 5, 17, 19), (3, 3), (3, 3), (1, 2, 0, 1), (1, 1)),  # stride 3
    ((1, 2, 3, 3), (3, 3), (2, 2), (2, 2, 2, 2), (1, 1)),  # more padding than pixels
    ((1, 64, 24, 24), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # parallel: >= 32K elements
]


def _expected(x: np.ndarray, dc: DirectConv, lay: Any) -> np.ndarray:
    """The padded, phase-split layout built with np.pad and strided slices, NaN where the
    copy must not write (the padding and the slack stay as the buffer had them)."""
    n, c = x.shape[:2]
    (sh, sw), (t, left, b, r) = dc.geo.strides, dc.geo.pads
    marked = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=np.nan)
    out = np.full((n, lay.lx), np.nan, np.float32)
    planes = out[:, : len(lay.phases) * c * lay.plane].reshape(n, len(lay.phases), c, lay.plane)
    for k, (ph, pw) in enumerate(lay.phases):
        phase = marked[:, :, ph::sh, pw::sw][:, :, : lay.hq, : lay.wq]
        grid = np.full((n, c, lay.hq, lay.wq), np.nan, np.float32)
        grid[:, :, : phase.shape[2], : phase.shape[3]] = phase
        planes[:, k, :, : lay.hq * lay.wq] = grid.reshape(n, c, -1)
    return out


def _layout(case: Case) -> tuple[DirectConv, Any]:
    xs, kernel, strides, pads, dil = case
    w = np.ones((2, xs[1], *kernel), np.float32)
    dc = DirectConv(w, ConvGeometry(kernel, strides, pads, dil, 1), False)
    return dc, dc.layout(*xs[1:])


@pytest.mark.parametrize("case", GEOMETRIES, ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}")
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_pad_phases_matches_numpy(case: Case, parts: int) -> None:
    dc, lay = _layout(case)
    x = RNG.standard_normal(case[0]).astype(np.float32)
    n, c, h, w = x.shape
    (sh, sw), (t, left) = dc.geo.strides, dc.geo.pads[:2]
    want = _expected(x, dc, lay)
    for copy in (pad_phases, pad_phases_serial):
        xb = np.full((n, lay.lx), np.nan, np.float32)  # NaN: what the copy did not write
        shape = (lay.plane, lay.hq, lay.wq, sh, sw, t, left)
        copy(x.reshape(n, c, h * w), w, 0, h, w, xb, lay.phase_table, *shape, parts)
        np.testing.assert_array_equal(xb, want)


@pytest.mark.parametrize("case", GEOMETRIES[:5], ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}")
def test_prepare_reads_a_wide_where_it_is(case: Case) -> None:
    # a conv's uncropped output: rows 3 columns wider than the pixels, starting 2 rows and 1
    # column into each plane, garbage (inf) everywhere else
    dc, lay = _layout(case)
    x = RNG.standard_normal(case[0]).astype(np.float32)
    n, c, h, w = x.shape
    wq, offset = w + 3, 2 * (w + 3) + 1
    flat = np.full((n, c, offset + (h + 1) * wq), np.inf, np.float32)
    rows = flat[:, :, offset : offset + h * wq].reshape(n, c, h, wq)
    rows[..., :w] = x
    wide = Wide(flat, h, wq, w, frame=(2, 1, 0, 2), buffer=flat.reshape(-1))
    assert wide.offset == offset
    got = dc.prepare(wide, lay, 2).copy()
    plain = dc.prepare(x, lay, 1)
    np.testing.assert_array_equal(got, plain)
    want = np.nan_to_num(_expected(x, dc, lay), nan=0.0)  # a new buffer: zero padding
    np.testing.assert_array_equal(got, want)
