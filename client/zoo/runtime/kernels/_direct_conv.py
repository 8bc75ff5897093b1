"""Direct convolution over a flattened, padded input: the sparse (and depthwise) conv path.

No im2col: the input of each image is padded, split into stride phases and flattened once
per call into ``xb`` (B, Lx). The output is computed at flat positions q = oh * Wq + ow over
the full phase width Wq (the columns ow >= Wo are garbage, cropped at the end), which makes
every weight tap a constant element offset:

    out[b, co, q] = bias[co] + sum_j values[j] * xb[b, offs[j] + q]      (j in row co)

with offs[j] = (phase * C + ci) * P + ((kh * dh) // sh) * Wq + (kw * dw) // sw, the plane
P = Hq * Wq rounded up to 16 floats, and phase = ((kh * dh) % sh, (kw * dw) % sw).
Strides, dilations, groups (ci is the absolute input channel) and depthwise all reduce to
this one kernel; it runs 128 contiguous output positions per register tile (eight AVX-512
accumulators; the rest of a row as 64 + 32 + 16 + 8) and skips zero weights.

Input channels in blocks (``DirectConv._blocks``, ``_codegen_conv.conv_body``): a task runs
each tile over all its rows one block of input channels at a time, the partial sums in
``out``, so that the block's input window (its channels at the tile's positions and the
taps' reach, _L1_WINDOW) is read from L1 by every row instead of from L2 by each nonzero.
A block holds _MIN_SEGMENT_NNZ nonzeros of a row on average at least (the partial sums
cost a load and a store per row and block), and the weights are stored by block, then
row, in the order the kernel reads them. Measured on the Zen 5 box, 90% sparse, against
the same kernel with one block: per call on 2 threads, ResNet-50's layers 0.890x the time
in sum (3x3 convs 0.85-0.89x, 1x1 0.90-0.98x); whole models at batch 1 on 2 threads, A/B
in one process: ResNet-50 90% 0.902x, 80% 0.855x, 95% 0.916x, at batch 16 0.894x;
MobileNetV2 90% 0.880x. Before the weights were stored in that order (by row), the 7x7
stage of the 90% ResNet-50 ran up to 25% slower than unblocked (its weights come from
memory, and each segment was a jump); before the blocks' size followed the density, the
95% model ran 1.08x slower (segments of 6-12 nonzeros). The two sizes are flat around
their values (whole 90% / 80% or 95% ResNet-50, A/B against 24 KB and 24 nonzeros): a 16 KB
window 1.011x / 1.016x the time, 32 KB 0.999x / 1.016x; 16 nonzeros 1.002x / 0.988x, 40
0.990x / 0.991x. With every tap's offset folded into
16 KB (all reads from L1; a timing experiment), a layer ran only 1.28-1.67x faster: the
blocks take a good part of that. The cost: numba's first compile of the two conv_all
variants takes 42 s instead of 31 s (once per machine; then loaded from its cache).

Between two convs the output need not be cropped: :class:`DirectCall` (shared with the dense
tiled conv) returns it as a ``_wide.Wide`` when the step asks for one, and a conv reading a
Wide copies its valid pixels straight into its own padded input - or, for a 1x1 conv with
stride 1 and no pads, computes on the wide rows where they are (:meth:`DirectConv.in_place`),
so that a ResNet stage runs from one 3x3 conv's output through the two 1x1 convs and the
residual without a copy. MaxPool reads a Wide too (the stem's). Whole ResNet-50 at batch 1
on 2 threads, A/B in one process against the crop after every conv, time: 90% sparse
0.918x, dense 0.927x. (Computing the 1x1 convs in place costs their garbage columns, 4-14%
more positions at 56x56-14x14; copying instead wherever that computes more positions than
the cropped input would: 1.009x and 0.993x the time of always in place - no difference.)

CPU time per call, 1 thread, 90% sparse, against onnxruntime's dense Conv (ResNet-50
shapes at 224x224, batch 1; ``bench/runtime.py --kernels --threads 1 --cpu-time``): 3x3
stride 1 3.0-4.0x; 1x1 2.4-4.5x (the 7x7 and 14x14 maps lowest); 3x3 stride 2 2.4x; 1x1
stride 2 4.2x; the 7x7 stride-2 stem 3.9x. Before the tile stores went through unsigned
positions (``_codegen_conv._tile``) and the work buffers were aligned (``_types.Scratch``):
2.8-3.6x, 2.2-3.3x, 2.2x, 3.3x, 2.4x. Whole ResNet-50 90% model, same kind of run: 1.94x
-> 2.53x at batch 1, 2.10x -> 2.55x at batch 64. Then each channel's plane was made to start
on a cache line (P, its length rounded up to 16 floats; before, the taps of a 1x1 conv on a
14x14 map read channel ci at ci * 196, and three in four of its tile loads straddled two
lines). Per call, 1 thread: 1024->256 1x1 at 14x14 0.35 -> 0.285 ms, 256->1024 at 14x14 0.30
-> 0.26, 2048->512 at 7x7 0.40 -> 0.315, 128ch 3x3 stride 2 at 56x56 0.90 -> 0.81, the other
shapes unchanged; the whole 90% ResNet-50 (A/B in one process) 0.951x, 0.956x, 0.962x and
0.971x the time at batch 1 on 2 threads, 0.949x on 1, 0.960x and 0.959x at batch 64.
Padding the rows to 16 floats as well, with one copy of the input per column shift so that
every tap reads an aligned address, made the kernel alone 1.25-1.36x faster on the 3x3
layers, but the copies cost as much: the whole model, against neither, 1.07x the time on 2
threads, 1.005x on 1 (not kept).

Tried and not kept (kernel time per call, 1 thread, same shapes): 128-wide tiles (eight
accumulator registers) 0.89-1.09x; two accumulator sets per tile, alternate nonzeros
(the FMA chains were not the limit on the Zen 4) 0.94-1.05x - on the Zen 5 they are, and
the tile now has two sets (``_codegen_conv._tile``); the relu applied to each tile as it is
stored 0.85-1.2x; input channels in blocks whose input window fits the 32 KB L1, partial
sums kept in ``out`` between blocks (although the same kernel with every tap's offset
folded into 16 KB ran up to 1.4x faster on the 3x3 layers) 0.5-1.0x; AVX2 instead of AVX-512
0.75-1.2x; a numba stride-2 phase split with one strided pass per phase instead of
numpy's strided copies (128ch 56x56: 0.17 ms either way; the copy is now ``_pad``, which
writes both column phases of an input row in one pass); one set of work buffers shared by
all convs (still in cache from the previous conv, the padding rewritten per call): the 90%
ResNet-50 at batch 1, 1 thread, 28.3 -> 28.0 and 29.5 -> 29.7 ms (min of 6-8 runs,
alternated); at batch 1 on 2 threads,
the padding copy and the crop as parallel numba kernels instead of numpy's copies on the
calling thread: whole 90% ResNet-50, A/B in one process, 1.019x / 0.989x and 0.911x / 1.004x
/ 0.990x the time (noise); and a batch's images looped inside one numba kernel (the padding
copy, the serial kernel and the crop per image on the kernel threads, no Python between
images) instead of Python threads calling the serial kernel: per layer at batch 16, 2
threads, 0.81-1.08x the time, the whole 90% ResNet-50 at batch 64 1.033x and 1.007x (A/B in
one process). Also at batch 1 on 2 threads: splitting the image between the threads instead
of the output channels, so that each core reads mostly rows it wrote itself (each thread
padded its band of rows, halo included, into a private buffer and ran the serial kernel on
it; a 1x1 conv split its flat positions, in place). Alone, a 64ch 3x3 at 56x56 went from
0.44 to 0.29 ms: there the channel split reads an input that the calling thread has just
padded, from the other core's cache. But in the whole 90% ResNet-50 (A/B in one process,
30 rounds) it took 0.94x, 0.99x, 1.03x and 1.04x the time with the 1x1 convs left on the
channel split, 1.014x twice with them split by position (their bounds on a multiple of 64
positions: split at row bounds, the second thread's tiles straddled cache lines, 1.08x).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._activation import Activation, activation_code
from ._buffers import empty
from ._codegen_conv import MAIN_WIDTH
from ._dense import parallel_images
from ._numba_env import slp_vectorize
from ._pad import pad_phases, pad_phases_serial
from ._pool import threads
from ._types import ConvGeometry, Kernel, Scratch
from ._wide import Wide, residual_args, zero_garbage

with slp_vectorize():
    from ._generated.conv import conv_all, conv_all_serial

SERIAL_MAX_WORK = 1 << 17  # multiply-adds below which one thread is faster (launch cost)
PARALLEL_PAD_MIN = 1 << 15  # input elements below which the padding copy runs on one thread
_L2_BYTES = 1 << 19  # the input window one pass of the dense kernel's tiles streams: half the L2
# The input window of one channel block of the sparse kernel (its channels at a main tile's
# positions and its taps' reach): under the 48 KB L1, room left for the partial sums.
_L1_WINDOW = 24 << 10
# nonzeros per segment (a row's taps in one channel block) on average, at least: the
# partial sums cost a load and a store per segment
_MIN_SEGMENT_NNZ = 24


@dataclass(frozen=True)
class _Layout:
    """Where each weight tap reads, for one input size (C, H, W)."""

    phases: tuple[tuple[int, int], ...]  # the stride phases (ph, pw) that some tap reads
    hq: int
    wq: int
    plane: int  # the channel stride: hq * wq rounded up to 16 floats (a cache line)
    ho: int
    wo: int
    lp: int  # flat output positions computed: Ho * Wq rounded up to 8, at least 64
    lx: int  # flat input length per image, including slack for the garbage positions
    offs: np.ndarray  # (nnz,) uint32, in the order of ``values``
    chunk: int  # output positions per pass of the dense kernel (a multiple of 128)
    values: np.ndarray  # (nnz,) float32: the weights by channel block, then row (_blocks)
    segptr: np.ndarray  # (K, Cout + 1) int64: block k's nonzeros of row co, see _blocks
    phase_table: np.ndarray  # (len(phases), 2) int64: ``phases`` for the padding kernel


class DirectConv:
    """Plan-time state: the weight's nonzeros as (ci, kh, kw, value) per output channel."""

    def __init__(
        self,
        weight: np.ndarray,
        geo: ConvGeometry,
        keep_zeros: bool,
        *,
        tile: int = 8,
        min_positions: int = 64,
    ) -> None:
        w = np.asarray(weight, dtype=np.float32)
        # output positions computed per image: a multiple of ``tile``, at least
        # ``min_positions`` (see _make_layout)
        self.tile = tile
        self.min_positions = min_positions
        cout, cg = w.shape[0], w.shape[1]
        mask = np.ones(w.shape, bool) if keep_zeros else w != 0
        self.indptr = np.zeros(cout + 1, np.int64)
        np.cumsum(mask.reshape(cout, -1).sum(axis=1), out=self.indptr[1:])
        co, ci, kh, kw = np.nonzero(mask)  # C order: each co's taps are contiguous
        self.ci = ci + (co // (cout // geo.group)) * cg  # absolute input channel
        self.kh, self.kw = kh, kw
        self.values = np.ascontiguousarray(w[co, ci, kh, kw])
        self.nnz = int(self.indptr[-1])
        self.cout = cout
        self.geo = geo
        self._layouts: dict[tuple[int, int, int, int], _Layout] = {}
        self.scratch = Scratch()  # 64-byte-aligned work buffers

    def layout(self, c: int, h: int, w: int, plane: int = 0) -> _Layout:
        """The flat layout for an input of (C, H, W), computed once per size; ``plane``
        sets the channel stride (0: H * W rounded up to 16 floats)."""
        key = (c, h, w, plane)
        if key not in self._layouts:
            self._layouts[key] = self._make_layout(c, h, w, plane)
        return self._layouts[key]

    def in_place(self, x: Wide) -> _Layout | None:
        """The layout that reads ``x`` where it is, or None: only a 1x1 conv with stride 1
        and no padding can (it computes on the garbage columns too, and its output is wide
        with the same row stride), when the positions it computes fit in ``x``'s planes and
        those start on cache lines (see :meth:`_make_layout`)."""
        g = self.geo
        c, plane = x.flat.shape[1:]
        if g.kernel != (1, 1) or g.strides != (1, 1) or any(g.pads) or plane % 16 or x.offset:
            return None
        lay = self.layout(c, x.ho, x.wq, plane)
        return lay if lay.lx == c * plane else None

    def framed(self, x: Wide) -> _Layout | None:
        """The layout that reads ``x`` where it is, or None: ``x`` must have been written
        inside a zero frame of exactly this conv's padding (``Wide.frame``, one image), and
        this conv must have stride 1 - its padded input is then that buffer as it is."""
        g = self.geo
        if x.frame != g.pads or g.strides != (1, 1) or x.buffer is None or x.flat.shape[0] != 1:
            return None
        c, plane = x.flat.shape[1:]
        lay = self.layout(c, x.ho, x.wo, plane)
        ok = lay.wq == x.wq and lay.hq * lay.wq <= plane and lay.lx <= x.buffer.size
        return lay if ok and len(lay.phases) == 1 else None

    def _make_layout(self, c: int, h: int, w: int, plane: int = 0) -> _Layout:
        g = self.geo
        (sh, sw), (dh, dw) = g.strides, g.dilations
        t, left, bot, r = g.pads
        ho, wo = g.out_size(h, w)
        hq, wq = -(-(h + t + bot) // sh), -(-(w + left + r) // sw)
        eh, ew = self.kh * dh, self.kw * dw  # tap offsets in padded input pixels
        tap_phase = (eh % sh) * sw + (ew % sw)
        used = sorted({int(p) for p in np.unique(tap_phase)}) if self.nnz else [0]
        slot = np.zeros(sh * sw, np.int64)
        slot[used] = np.arange(len(used))
        # the channel stride rounded up to 16 floats: else, where the taps of a 1x1 conv on a
        # 14x14 or 7x7 map read channel ci at ci * 196 or ci * 49, three in four of a tile's
        # 64-byte loads straddle two cache lines (measured in the module docstring)
        plane = plane or -(-(hq * wq) // 16) * 16
        offs = (slot[tap_phase] * c + self.ci) * plane + (eh // sh) * wq + ew // sw
        # positions computed: a multiple of the tile (8 for the sparse kernel: its tail runs
        # as 32 + 16 + 8 wide tiles; 32 for the dense tiled one), and for the sparse kernel at
        # least 64: one 64-wide tile beats 32 + 16 + 8 (ResNet's 7x7 maps, 1x1 conv: 1.96x ->
        # 2.51x ORT), while rounding 196 positions up to 256 lost (2.94x -> 2.43x)
        lp = max(self.min_positions, -(-(ho * wq) // self.tile) * self.tile)
        lx = max(len(used) * c * plane, int(offs.max(initial=0)) + lp)
        if lx >= 2**32:
            raise ValueError(f"conv input too large for uint32 offsets: {lx} elements per image")
        last_col = int((ew // sw)[offs.argmax()]) if self.nnz else 0  # farthest tap's column
        # a multiple of the sparse kernel's main tile (and so of the dense kernel's 32)
        window = _L2_BYTES // (4 * c * len(used)) - last_col
        chunk = max(MAIN_WIDTH, window // MAIN_WIDTH * MAIN_WIDTH)
        phases = tuple((p // sw, p % sw) for p in used)
        reach = int(((eh // sh) * wq + ew // sw).max(initial=0))  # farthest tap from q
        segptr, order = self._blocks(_L1_WINDOW // (4 * (MAIN_WIDTH + reach) * len(used)))
        # the weights in the order the sparse kernel walks them (for the dense kernel's one
        # row of taps the order is unchanged: its channels come in order)
        offs, values = offs[order].astype(np.uint32), self.values[order]
        table = np.array(phases, np.int64).reshape(len(phases), 2)
        return _Layout(phases, hq, wq, plane, ho, wo, lp, lx, offs, chunk, values, segptr, table)

    def _blocks(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(segptr, order) for blocks of cb >= ``block`` input channels, enough for
        _MIN_SEGMENT_NNZ nonzeros per segment on average (one block for grouped convs, whose
        rows read their own group only): ``order`` sorts the nonzeros by block, then row
        (then channel and tap, as they were), so that the kernel, which runs a tile over
        every row one block at a time, reads the weights in order; row co's nonzeros in
        block k are then segptr[k, co] .. segptr[k, co + 1]. (In row order the blocked
        kernel ran the 7x7 stage of the 90% ResNet-50 up to 25% slower than unblocked: its
        weights come from memory, and a jump per segment left the prefetchers behind.)"""
        g = self.geo
        cin = int(self.ci.max(initial=0)) + 1
        per_channel = self.nnz / max(1, self.cout * cin)  # a row's nonzeros per channel
        cb = max(block, math.ceil(_MIN_SEGMENT_NNZ / max(per_channel, 1e-9)), 1)
        nblk = 1 if g.group > 1 else -(-cin // cb)
        rows = np.repeat(np.arange(self.cout, dtype=np.int64), np.diff(self.indptr))
        key = (self.ci // cb if nblk > 1 else 0) * self.cout + rows
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(nblk * self.cout + 1))
        at = np.arange(nblk)[:, None] * self.cout + np.arange(self.cout + 1)[None, :]
        return np.ascontiguousarray(bounds[at], dtype=np.int64), order

    def prepare(self, x: np.ndarray | Wide, lay: _Layout, parts: int = 1) -> np.ndarray:
        """(B, C, H, W) -> (B, Lx): padded, split into the used stride phases, flattened;
        a Wide is read where it is. The copy runs as ``parts`` tasks (``_pad``)."""
        n, c, h, w = x.shape
        g = self.geo
        (sh, sw), (t, left) = g.strides, g.pads[:2]
        if isinstance(x, Wide):
            src, srow, soff = x.flat, x.wq, x.offset
        elif (
            len(lay.phases) == 1
            and (sh, sw) == (1, 1)
            and not any(g.pads)
            and lay.lx == c * h * w
            and x.flags.c_contiguous
        ):
            return x.reshape(n, lay.lx)  # 1x1-like: the input already is the flat layout
        else:
            src, srow, soff = np.ascontiguousarray(x, np.float32).reshape(n, c, h * w), w, 0
        xb = self.scratch.get("x", (n, lay.lx))  # the padding stays zero between calls
        if n * c * h * w < PARALLEL_PAD_MIN:
            parts = 1
        copy = pad_phases if parts > 1 else pad_phases_serial
        shape = (lay.plane, lay.hq, lay.wq, sh, sw, t, left)
        copy(src, srow, soff, h, w, xb, lay.phase_table, *shape, parts)
        return xb


# launch(xb, layout, res, rg, out, serial): one kernel call over the flat input xb (B, Lx)
Launch = Callable[[np.ndarray, _Layout, np.ndarray, np.ndarray, np.ndarray, bool], None]


class DirectCall:
    """The calling side of a direct conv kernel (sparse or dense): the input's layout and
    padding copy, the launch, then the crop into a (B, Cout, Ho, Wo) array or a
    :class:`~._wide.Wide`; a batch's images on the worker threads.

    ``work`` is the multiply-adds per output position (the nonzeros, or rows x K for the
    dense kernel) and ``rows`` the channels the kernel writes (``cout`` or more)."""

    def __init__(
        self, dc: DirectConv, cin: int, cout: int, rows: int, work: int, launch: Launch
    ) -> None:
        self.dc, self.cin, self.cout, self.rows, self.work = dc, cin, cout, rows, work
        self.launch = launch

    def __call__(
        self,
        x: np.ndarray | Wide,
        residual: np.ndarray | Wide | None,
        wide: bool,
        frame: tuple[int, int, int, int] | None = None,
    ) -> np.ndarray | Wide:
        """``act(conv(x) [+ residual])``; a Wide only when ``wide`` and the crop was due,
        framed for a reader padded by ``frame`` (top, left, bottom, right) when it can be
        (see ``_wide``)."""
        n, c, h, w = x.shape
        if c != self.cin:
            raise ValueError(f"conv input has {c} channels, the weight expects {self.cin}")
        if not isinstance(x, Wide):
            x = np.ascontiguousarray(x, dtype=np.float32)
        in_place = self.dc.in_place(x) if isinstance(x, Wide) else None
        framed = self.dc.framed(x) if isinstance(x, Wide) and in_place is None else None
        lay = in_place or framed or self.dc.layout(c, h, w)
        # reading a Wide in place, the conv computes its garbage columns too
        out_shape = (n, self.cout, lay.ho, w if in_place else lay.wo)
        if residual is not None and tuple(residual.shape) != out_shape:
            raise ValueError(f"conv residual must have shape {out_shape}, got {residual.shape}")
        if n == 1 or self.work * lay.lp < SERIAL_MAX_WORK:  # one image, or tiny ones: at once
            # one thread: the serial kernel, 5-10% faster than the parallel one run as a
            # single part (1 thread per call: 64ch 3x3 at 56x56 0.474 -> 0.444 ms)
            small = self.work * n * lay.lp < SERIAL_MAX_WORK
            serial = small or threads() == 1
            source = "in place" if in_place else "framed" if framed else "copy"
            return self._into(x, lay, source, residual, serial, wide, None, frame)
        # A batch: one image at a time per worker, serial kernels. Each image's padded input
        # and output tile stay in that core's L2; the whole batch at once streamed the
        # (B, Lx) and (B, Cout, Lp) work arrays through memory (1.5-3x slower per image).
        xa = np.asarray(x)
        if in_place or framed:  # the images go one by one through the plain layout
            lay = self.dc.layout(c, h, w)
        r = np.asarray(residual) if isinstance(residual, Wide) else residual
        y = empty((n, self.cout, lay.ho, lay.wo))

        def image(i: int) -> None:
            res = None if r is None else r[i : i + 1]
            self._into(xa[i : i + 1], lay, "copy", res, True, False, y[i : i + 1])

        parallel_images(n, image)
        return y

    def _into(
        self,
        x: np.ndarray | Wide,
        lay: _Layout,
        source: str,
        res: np.ndarray | Wide | None,
        serial: bool,
        wide: bool,
        y: np.ndarray | None,
        frame: tuple[int, int, int, int] | None = None,
    ) -> np.ndarray | Wide:
        # One kernel launch (see _codegen_conv.conv_body): the tiles, the residual add and the
        # activation; then the crop of garbage columns, a numpy copy, unless a Wide will do.
        # ``source``: how the padded input is had - "in place" (a 1x1 conv on a Wide's rows),
        # "framed" (a Wide written inside this conv's zero padding) or "copy" (prepare).
        n, cout, rows, dc = x.shape[0], self.cout, self.rows, self.dc
        in_place = source == "in place"
        if isinstance(x, Wide) and in_place:
            xb = x.flat.reshape(n, lay.lx)
        elif isinstance(x, Wide) and source == "framed":
            assert x.buffer is not None
            xb = x.buffer[: lay.lx].reshape(1, lay.lx)
        else:
            xb = dc.prepare(x, lay, 1 if serial else threads())
        wo = x.shape[3] if in_place else lay.wo
        flat = lay.ho * lay.wq
        plane = self._framing(lay, wo, frame) if wide and y is None and n == 1 else None
        # no garbage columns: write y directly
        direct = not in_place and lay.wq == lay.wo and lay.lp == flat and rows == cout
        if plane is not None:
            assert frame is not None
            return self._framed(xb, lay, wo, res, serial, frame, plane)
        if direct:
            y = empty((n, cout, lay.ho, wo)) if y is None else y
            out = y.reshape(n, cout, lay.lp)
        else:
            # planes of whole cache lines, which a 1x1 conv reading this as a Wide needs, and
            # a multiple of the dense tile's 32 positions: the positions a dense 1x1 conv
            # computes on these rows then fit, whichever kernel wrote them
            out = dc.scratch.get("out", (n, rows, -(-lay.lp // 32) * 32))
        r, rg = residual_args(res, (n, cout, lay.ho, wo))
        self.launch(xb, lay, r, rg, out, serial)
        if direct:
            assert y is not None
            return y
        if wide and y is None and (n == 1 or rows == cout):
            return Wide(out[:, :cout], lay.ho, lay.wq, wo)
        y = empty((n, cout, lay.ho, wo)) if y is None else y
        # numpy's strided copy: 30 us for 64x56x56, a numba loop took 105 us (and the crop
        # inside the kernel's epilogue, from out into y, was no faster on ResNet-50's
        # shapes; where y is out, as in a 1x1 conv, the aliased rows no longer vectorized
        # and a residual 1x1 call took 2x as long)
        y[...] = out[:, :cout, :flat].reshape(n, cout, lay.ho, lay.wq)[..., :wo]
        return y

    def _framing(
        self, lay: _Layout, wo: int, frame: tuple[int, int, int, int] | None
    ) -> int | None:
        """The plane of an output written inside the zero frame ``frame`` asks for, or None
        when its rows do not have the padded width. The plane holds the padded image and
        the positions the kernel writes (whole cache lines, as the reader's
        ``_make_layout`` rounds it)."""
        if frame is None:
            return None
        t, left, b, r = frame
        if min(frame) < 0 or lay.wq != wo + left + r:
            return None
        offset = t * lay.wq + left
        return -(-max((lay.ho + t + b) * lay.wq, offset + lay.lp) // 16) * 16

    def _framed(
        self,
        xb: np.ndarray,
        lay: _Layout,
        wo: int,
        res: np.ndarray | Wide | None,
        serial: bool,
        frame: tuple[int, int, int, int],
        plane: int,
    ) -> Wide:
        # Measured, A/B in one process, 2 threads, batch 1: 90% ResNet-50 0.978x and 0.996x
        # the time (two runs; 9 of its 13 stride-1 3x3 convs read a framed input, the others
        # come first in their stage, after a conv whose rows are not the padded width),
        # dense 0.995x, 90% MobileNetV2 0.991x (8 depthwise convs). Zeroing the garbage with
        # numpy's strided assignment instead (8-11 us a conv) kept half of it.
        # The kernel writes each row's positions q < lp at offset + q of its plane: its out
        # argument is the buffer seen from ``offset`` on, (1, rows, plane) and C-contiguous.
        # Then the garbage columns and the positions past the image are zeroed; the rest of
        # the frame was zeroed when the buffer was made and is never written (a buffer per
        # geometry). The slack after the last plane covers the reader's taps past it.
        cout, rows, ho, wq = self.cout, self.rows, lay.ho, lay.wq
        offset = frame[0] * wq + frame[1]
        slack = 2 * wq + 128
        size = offset + rows * plane + slack
        buf = self.dc.scratch.get(f"framed {frame} {plane} {wq} {lay.lp}", (size,))
        out = buf[offset : offset + rows * plane].reshape(1, rows, plane)
        r, rg = residual_args(res, (1, cout, ho, wo))
        self.launch(xb, lay, r, rg, out, serial)
        zero_garbage(out[:, :cout] if rows > cout else out, ho, wq, wo, lay.lp)
        flat = buf[: cout * plane].reshape(1, cout, plane)
        return Wide(flat, ho, wq, wo, frame=frame, buffer=buf)


def direct_conv(
    weight: np.ndarray,
    bias: np.ndarray | None,
    geo: ConvGeometry,
    act_: Activation | None,
    *,
    keep_zeros: bool = False,
) -> Kernel:
    """Plan a direct conv; skips zero weights unless ``keep_zeros`` (dense depthwise)."""
    dc = DirectConv(weight, geo, keep_zeros)
    cout = dc.cout
    b = np.zeros(cout, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    code, alpha, beta = activation_code(act_)
    fa, fb = np.float32(alpha), np.float32(beta)

    def launch(
        xb: np.ndarray, lay: _Layout, r: np.ndarray, rg: np.ndarray, out: np.ndarray, serial: bool
    ) -> None:
        parts = 1 if serial else min(threads(), xb.shape[0] * cout)
        (conv_all_serial if serial else conv_all)(
            xb, lay.offs, lay.segptr, lay.values, b, lay.lp, parts, r, rg, lay.wq, code, fa, fb, out
        )

    call = DirectCall(dc, weight.shape[1] * geo.group, cout, cout, max(dc.nnz, 1), launch)
    kind = "dense-direct-conv" if keep_zeros else "sparse-direct-conv"
    return Kernel(call, kind, takes_wide=True)
