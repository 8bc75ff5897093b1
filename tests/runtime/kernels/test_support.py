"""Generated sources, thread control (the batch's image pool too) and the numba configuration
of the kernels."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from zoo.runtime.kernels import _numba_env, plan_linear, set_threads
from zoo.runtime.kernels._codegen import GENERATED, modules
from zoo.runtime.kernels._codegen_text import span_variants
from zoo.runtime.kernels._dense import parallel_images
from zoo.runtime.kernels._numba_env import kernel, numba, slp_enabled


def test_generated_sources_are_current() -> None:
    # run `python -m zoo.runtime.kernels._codegen` after changing the generator
    for name, src in modules().items():
        assert (GENERATED / name).read_text() == src, f"_generated/{name} is stale"


_SPAN_BODY = """
def fill(out, k):
    \"\"\"out[i] = 10 * i + k for every i.\"\"\"
    n = out.shape[0]
    for i in PRANGE(n):
        out[i] = 10 * i + k
"""


def test_span_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the three functions of a span kernel, imported from a file as the generated modules are
    head = "import numba\nfrom zoo.runtime.kernels._numba_env import FASTMATH, kernel\n\n\n"
    (tmp_path / "zoo_span_fill.py").write_text(
        head + span_variants(_SPAN_BODY, "void(int64[::1], int64)")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("zoo_span_fill")
    fill, serial, span = module.fill, module.fill_serial, module.fill_span
    want = 10 * np.arange(37) + 3
    for f in (fill, serial):
        out = np.zeros(37, np.int64)
        f(out, 3)  # type: ignore[operator]
        np.testing.assert_array_equal(out, want)
    out = np.zeros(37, np.int64)
    span(out, 3, 5, 1 << 62)  # type: ignore[operator]  # from 5 to the loop's own end
    np.testing.assert_array_equal(out, np.where(np.arange(37) >= 5, want, 0))
    span(out, 4, 0, 2)  # type: ignore[operator]
    np.testing.assert_array_equal(out[:5], [4, 14, 0, 0, 0])
    with pytest.raises(ValueError, match="one top-level"):
        span_variants(_SPAN_BODY.replace("PRANGE", "range"), "void(int64[::1], int64)")


def test_lazy_kernel_compiles_once_on_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def twice(x):  # type: ignore[no-untyped-def]
        for i in range(x.shape[0]):
            x[i] *= 2

    compiled_with_slp = []
    njit = numba.njit

    def spy(*args, **options):  # type: ignore[no-untyped-def]
        compiled_with_slp.append(_numba_env.config.SLP_VECTORIZE)
        return njit(*args, **options)

    with _numba_env._slp(0):  # defined where SLP is off: compiled with it off
        k = kernel("void(float32[::1])", nogil=True)(twice)
    assert not k.compiled and k.__name__ == "twice"
    monkeypatch.setattr(numba, "njit", spy)
    outs = [np.arange(5, dtype=np.float32) for _ in range(4)]
    threads = [threading.Thread(target=k, args=(x,)) for x in outs]  # first calls at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert k.compiled and compiled_with_slp == [0]
    for x in outs:
        np.testing.assert_array_equal(x, 2 * np.arange(5))
    assert k.dispatcher() is k.dispatcher() and len(k.dispatcher().signatures) == 1
    with pytest.raises(TypeError, match="No matching definition"):
        k(np.ones(3))  # float64: the signature holds, no second compilation
    assert compiled_with_slp == [0]


def test_set_threads() -> None:
    from threadpoolctl import threadpool_info

    w = np.eye(64, dtype=np.float32)
    x = np.ones((64, 64), np.float32)
    try:
        set_threads(1)
        assert numba.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        np.testing.assert_array_equal(plan_linear(w, None)(x), x)
    finally:
        set_threads(None)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_slp_vectorizer_on_by_default() -> None:
    assert slp_enabled()


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 64])
def test_parallel_images_calls_each_image_once(workers: int, n: int) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def image(i: int) -> None:
        with lock:
            seen.append(i)

    try:
        set_threads(workers)
        parallel_images(n, image)
    finally:
        set_threads(None)
    assert sorted(seen) == list(range(n))


def test_parallel_images_hands_out_images_as_workers_free_up() -> None:
    # A slow image 0 (a core another process is using): the other worker takes every other
    # image meanwhile. Fixed halves left images 1-4 waiting behind image 0.
    ran_by: dict[int, int] = {}

    def image(i: int) -> None:
        if i == 0:
            time.sleep(1.0)
        ran_by[i] = threading.get_ident()

    try:
        set_threads(2)
        parallel_images(10, image)
    finally:
        set_threads(None)
    slow = ran_by[0]
    assert [i for i, t in ran_by.items() if t == slow] == [0], ran_by
