"""The direct conv's padding copy: an input's pixels into its zero-padded, phase-split layout.

A strided conv reads its padded input split into stride phases: phase (ph, pw) holds the
padded pixels (i * sh + ph, j * sw + pw), so that every tap reads a contiguous run
(``_direct_conv``). numpy's strided assignment did that copy one element at a time for
stride 2 (a column step of two floats); these kernels read each input row once and write
both column phases of it in one loop, which LLVM vectorizes (interleaved loads). Measured,
per call, ResNet-50's inputs (1 thread, then 2 threads), against numpy's assignment:

=========================  =====  ===============
input, conv                numpy  here, 1 / 2 thr
=========================  =====  ===============
128ch 56x56, 3x3 stride 2  0.115  0.055 / 0.029
256ch 28x28, 3x3 stride 2  0.071  0.058 / 0.030
256ch 56x56, 1x1 stride 2  0.055  0.043 / 0.027
3ch 224x224, 7x7 stride 2  0.045  0.015 / 0.009
64ch 56x56, 3x3 stride 1   0.024  0.017 / 0.009
=========================  =====  ===============

The source is read where it is: a plain (B, C, H, W) array or a conv's uncropped output
(``Wide``: rows ``srow`` apart, pixel (0, 0) at ``soff``), so a Wide is not cropped first.
The parallel kernel splits the channels into ``parts`` contiguous runs, as the conv kernels
split their output channels: each thread then copies, for the most part, what it wrote.
Only the pixels are written; the buffer's padding was zeroed when it was made and stays so.
"""

from __future__ import annotations

import numpy as np

from ._numba_env import kernel, numba

_u64 = numba.uint64

# (src, srow, soff, h, w, xb, phases, plane, hq, wq, sh, sw, top, left, parts)
_SIG = (
    "void(float32[:, :, ::1], int64, int64, int64, int64, float32[:, ::1], int64[:, ::1], "
    "int64, int64, int64, int64, int64, int64, int64, int64)"
)


@numba.njit(inline="always")
def _span(phases, k, top, left, h, w, hq, wq, sh, sw):  # type: ignore[no-untyped-def]
    # phase k's row phase, its rows [h0, h1) and its first column w0 that hold pixels, the
    # count of such columns, and the input column of its column w0
    ph, pw = phases[k, 0], phases[k, 1]
    h0 = max(0, -((ph - top) // sh))
    w0 = max(0, -((pw - left) // sw))
    h1 = min(hq, (h - 1 + top - ph) // sh + 1)
    w1 = min(wq, (w - 1 + left - pw) // sw + 1)
    return ph, h0, h1, w0, max(0, w1 - w0), w0 * sw + pw - left


@numba.njit(cache=True, nogil=True)
def _pad_channels(  # type: ignore[no-untyped-def]
    src, srow, soff, h, w, xb, phases, plane, hq, wq, sh, sw, top, left, c_lo, c_hi
):
    # channels [c_lo, c_hi) of every image; indices unsigned, so that numba adds no
    # negative-index wraparound code to the copy loops
    c = src.shape[1]
    nph = phases.shape[0]
    odd = np.empty(wq, np.float32)
    for b in range(src.shape[0]):
        xo = xb[b]
        for ci in range(c_lo, c_hi):
            xc = src[b, ci]
            k = 0
            while k < nph:
                ph, h0, h1, w0, cnt, j0 = _span(phases, k, top, left, h, w, hq, wq, sh, sw)
                base = (k * c + ci) * plane
                if sw == 2 and k + 1 < nph and phases[k + 1, 0] == ph:
                    # column phases 0 and 1 of one row phase, whose first pixels are two
                    # neighbouring input columns: one pass over each input row writes both
                    # (two strided passes did not vectorize: 4x slower)
                    _, _, _, w0b, cntb, j0b = _span(phases, k + 1, top, left, h, w, hq, wq, sh, sw)
                    baseb = (k * c + c + ci) * plane
                    # "a" starts at the even input column (0), "b" at the odd one (1); b
                    # never has more pixels than a: its columns come one later, and the
                    # row's end (wq) cuts b first or both alike
                    if j0b < j0:
                        da, db, ca, cb, ja = baseb + w0b, base + w0, cntb, cnt, j0b
                    else:
                        da, db, ca, cb, ja = base + w0, baseb + w0b, cnt, cntb, j0
                    for r in range(h0, h1):
                        s = _u64(soff + (r * sh + ph - top) * srow + ja)
                        pa = _u64(da + r * wq)
                        pb = _u64(db + r * wq)
                        for j in range(_u64(cb)):
                            xo[pa + j] = xc[s + _u64(2) * j]
                            xo[pb + j] = xc[s + _u64(2) * j + _u64(1)]
                        for j in range(_u64(cb), _u64(ca)):
                            xo[pa + j] = xc[s + _u64(2) * j]
                    k += 2
                    continue
                for r in range(h0, h1):
                    d = _u64(base + w0 + r * wq)
                    s = _u64(soff + (r * sh + ph - top) * srow + j0)
                    if sw == 1:
                        for j in range(_u64(cnt)):
                            xo[d + j] = xc[s + j]
                    elif sw == 2 and cnt > 0:
                        # one column phase alone (a 1x1 conv's): read the pairs, as above,
                        # the other column into ``odd`` (L1), up to the last pixel: 2.2x
                        # faster than the strided reads (256ch 56x56 -> 28x28: 0.070 ->
                        # 0.032 ms)
                        last = _u64(cnt - 1)
                        for j in range(last):
                            xo[d + j] = xc[s + _u64(2) * j]
                            odd[j] = xc[s + _u64(2) * j + _u64(1)]
                        xo[d + last] = xc[s + _u64(2) * last]
                    else:
                        for j in range(_u64(cnt)):
                            xo[d + j] = xc[s + _u64(sw) * j]
                k += 1


@kernel(_SIG, parallel=True, cache=True, nogil=True)
def pad_phases(src, srow, soff, h, w, xb, phases, plane, hq, wq, sh, sw, top, left, parts):  # type: ignore[no-untyped-def]
    """Copy the (B, C, h, w) pixels of ``src`` (B, C, L) - pixel (i, j) of channel c at
    ``src[b, c, soff + i * srow + j]`` - into ``xb`` (B, Lx): phase k = (ph, pw) of
    ``phases`` (K, 2) at ``(k * C + c) * plane``, its row r of ``wq`` columns holding the
    padded pixels (r * sh + ph, q * sw + pw) (``top`` and ``left`` padding). ``parts``
    tasks, each a contiguous run of channels."""
    c = src.shape[1]
    for p in numba.prange(parts):
        _pad_channels(
            src,
            srow,
            soff,
            h,
            w,
            xb,
            phases,
            plane,
            hq,
            wq,
            sh,
            sw,
            top,
            left,
            p * c // parts,
            (p + 1) * c // parts,
        )


@kernel(_SIG, cache=True, nogil=True)
def pad_phases_serial(src, srow, soff, h, w, xb, phases, plane, hq, wq, sh, sw, top, left, parts):  # type: ignore[no-untyped-def]
    """:func:`pad_phases` on the calling thread (``parts`` is ignored)."""
    _pad_channels(
        src, srow, soff, h, w, xb, phases, plane, hq, wq, sh, sw, top, left, 0, src.shape[1]
    )
