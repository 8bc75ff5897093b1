"""Dense GEMMs split over threads: numpy's cblas_sgemm called from numba (``_gemm``) and the
Python-pool fallback, each against a float64 numpy reference; the im2col kernel; the
OpenMP wait policy that goes with them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from runtime.kernels._reference import conv2d
from zoo.runtime.kernels import Activation, _pool, matmul_batched, set_threads
from zoo.runtime.kernels._cblas import find_sgemm
from zoo.runtime.kernels._dense import dense_conv, im2col_into, im2col_parallel
from zoo.runtime.kernels._pool import Epilogue, matmul_into
from zoo.runtime.kernels._types import ConvGeometry


@pytest.fixture(params=["cblas", "pool"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on the OpenMP threads (cblas) and on the Python pool (no cblas)."""
    if request.param == "pool":
        monkeypatch.setattr(_pool, "find_sgemm", lambda: None)
    yield request.param


@pytest.fixture(params=[1, 2, 3])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    set_threads(request.param)
    yield request.param
    set_threads(None)


def test_numpy_cblas_is_found_here() -> None:
    # numpy's wheels ship OpenBLAS with cblas_sgemm: the fast path must be the one these
    # machines (and CI) measure; a None here means every GEMM silently took the fallback
    sgemm = find_sgemm()
    assert sgemm is not None and sgemm.gemm != 0


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _reference(a: np.ndarray, b: np.ndarray, e: Epilogue) -> np.ndarray:
    y = a.astype(np.float64) @ b
    if e.brow.size:
        y = y + e.brow[:, None]
    if e.bcol.size:
        y = y + e.bcol[None, :]
    if e.res.shape[0]:
        y = y + e.res
    if e.code == 1:
        y = np.maximum(y, 0)
    elif e.code == 2:
        y = np.clip(y, e.alpha, e.beta)
    return y


def _constant(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # as a model's constants are
    return a


def _epilogues(m: int, n: int) -> list[Epilogue]:
    # biases read-only like the model constants they are (numba types those apart)
    return [
        Epilogue(),
        Epilogue(brow=_constant(_rand(m, seed=5)), code=1),
        Epilogue(bcol=_constant(_rand(n, seed=6)), res=_rand(m, n, seed=7), code=1),
        Epilogue(
            brow=_rand(m, seed=8),
            res=_constant(_rand(m, n, seed=9)),
            code=2,
            alpha=-0.3,
            beta=0.4,
        ),
    ]


@pytest.mark.parametrize(
    ("m", "k", "n"),
    [(64, 700, 1501), (130, 300, 97), (3000, 64, 40), (2000, 33, 2000), (256, 64, 3136)],
)
def test_matmul_into_with_epilogue(path: str, threads: int, m: int, k: int, n: int) -> None:
    # wide (column blocks on 16-float boundaries) and tall (row blocks), each part applying
    # the bias / residual / activation to its own block
    a, b = _rand(m, k, seed=1), _rand(k, n, seed=2)
    _constant(b)  # a weight
    for e in _epilogues(m, n):
        out = np.full((m, n), np.nan, np.float32)
        matmul_into(a, b, out, e)
        np.testing.assert_allclose(out, _reference(a, b, e), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stack_kernel", [True, False])
def test_matmul_batched_operands_as_they_lie(
    path: str, threads: int, stack_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # transposed views go to sgemm as transposed; reversed and broadcast stacks, and
    # matrices that are neither row- nor column-major, are handled (copied where needed);
    # with the stack kernel (_bmm) on, and off so that the sgemm paths are checked as well
    if not stack_kernel:
        monkeypatch.setattr(_pool, "matmul_stack", lambda a, b, t: None)
    q = _rand(1, 128, 12, 64, seed=10).transpose(0, 2, 1, 3)  # (1, 12, 128, 64) view
    kt = _rand(1, 128, 12, 64, seed=11).transpose(0, 2, 3, 1)  # (1, 12, 64, 128) view
    a3, b3 = _rand(6, 70, 90, seed=12), _rand(6, 90, 50, seed=13)
    cases = [
        (q, kt),
        (a3[::-1], b3),  # negative stack stride
        (a3[:, ::2], b3),  # row stride of two rows
        (a3[:, :, ::-1], b3[:, ::-1]),  # negative inner strides: copied
        (np.broadcast_to(_rand(1, 100, 200, seed=14), (4, 100, 200)), _rand(4, 200, 60)),
        (_rand(3, 1, 300, seed=15), _rand(3, 300, 400, seed=16)),  # one row per matrix
        (_rand(4, 200, 300, seed=17), _rand(4, 300, 1, seed=18)),  # one column
    ]
    for a, b in cases:
        got = matmul_batched(a, b)
        assert got.dtype == np.float32 and got.shape == np.matmul(a, b).shape
        np.testing.assert_allclose(got, np.matmul(a.astype(np.float64), b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("c", "h", "w", "k", "stride", "pad", "dil"),
    [
        (3, 224, 224, 7, 2, 3, 1),  # ResNet's stem
        (16, 28, 28, 3, 1, 1, 1),
        (8, 29, 31, 3, 2, 1, 1),  # odd sizes, stride 2
        (5, 10, 12, 3, 1, 2, 2),  # dilation with a wider pad
        (4, 9, 9, 5, 3, 0, 1),
        (2, 3, 4, 5, 1, 2, 1),  # kernel wider than the image: whole rows of padding
        (6, 7, 7, 1, 1, 0, 1),
    ],
)
def test_im2col_parallel_matches_strided_copy(
    threads: int, c: int, h: int, w: int, k: int, stride: int, pad: int, dil: int
) -> None:
    geo = ConvGeometry((k, k), (stride, stride), (pad, pad, pad, pad), (dil, dil), 1)
    ho, wo = geo.out_size(h, w)
    x = _rand(c, h, w, seed=c + h)
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    want = np.empty((c * k * k, ho * wo), np.float32)
    im2col_into(xp, geo, ho, wo, want)
    got = np.full_like(want, np.nan)
    im2col_parallel(x, k, k, stride, stride, dil, dil, pad, pad, ho, wo, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("c", "hw", "k", "stride"), [(16, 30, 3, 1), (8, 33, 7, 2), (24, 9, 3, 2)])
def test_dense_conv_paths_agree(
    path: str, threads: int, c: int, hw: int, k: int, stride: int
) -> None:
    # im2col (batch 1: the numba im2col and a split GEMM), with a residual, against a float64
    # direct conv
    rng = np.random.default_rng(hw)
    wt = rng.uniform(-0.5, 0.5, (c + 3, c, k, k)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, c + 3).astype(np.float32)
    geo = ConvGeometry((k, k), (stride, stride), (k // 2,) * 4, (1, 1), 1)
    x = _rand(1, c, hw, hw, seed=20)
    ho, wo = geo.out_size(hw, hw)
    res = _rand(1, c + 3, ho, wo, seed=21)
    relu = Activation("relu")
    want = np.maximum(conv2d(x, wt, bias, geo.strides, geo.pads, geo.dilations, 1) + res, 0)
    got = dense_conv(wt, bias, geo, relu)(x, res)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _policy(**env: str) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "ZOO_NO_CBLAS")
    }
    code = (
        "import os, zoo.runtime.kernels as k; "
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_openmp_threads_spin_briefly_only_with_cblas() -> None:
    from zoo.runtime.kernels._numba_env import SPIN_COUNT

    # with every parallel part on the OpenMP threads they spin between launches ...
    assert _policy() == f"None {SPIN_COUNT}"
    # ... without cblas the GEMMs run on Python threads, which spinning workers would starve
    assert _policy(ZOO_NO_CBLAS="1") == "PASSIVE None"
    # and a user's own setting is left alone
    assert _policy(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE None"
    assert _policy(GOMP_SPINCOUNT="5") == "None 5"


def test_32_bit_cblas() -> None:
    # numpy's OpenBLAS has 64-bit integers; the 32-bit calls (other numpy builds) are
    # checked on scipy's OpenBLAS, which has 32-bit ones: sgemm split in parts
    import ctypes

    from zoo.runtime.kernels._cblas import _works
    from zoo.runtime.kernels._gemm import NONE1, NONE2, gemm_parts

    pytest.importorskip("scipy.linalg")  # loads scipy's OpenBLAS
    from threadpoolctl import threadpool_info

    paths = [i["filepath"] for i in threadpool_info() if "scipy_openblas-" in i["filepath"]]
    if not paths:
        pytest.skip("scipy's 32-bit OpenBLAS is not loaded")
    lib = ctypes.CDLL(paths[0])
    mm = ctypes.cast(lib.scipy_cblas_sgemm, ctypes.c_void_p).value or 0
    assert _works(mm, False)
    a, b = _rand(70, 50, seed=30), _rand(50, 90, seed=31)
    out = np.full((70, 90), np.nan, np.float32)
    bounds = np.array([0, 48, 90], np.int64)
    args = (NONE1, NONE1, NONE2, 1, np.float32(0), np.float32(0))
    gemm_parts(mm, False, a.ctypes.data, b.ctypes.data, 50, out, True, bounds, *args)
    np.testing.assert_allclose(out, np.maximum(a.astype(np.float64) @ b, 0), rtol=1e-4, atol=1e-4)
