"""Generated sources, thread control and the numba configuration of the kernels."""

from __future__ import annotations

import numpy as np

from zoo.runtime.kernels import plan_linear, set_threads
from zoo.runtime.kernels._codegen import GENERATED, modules
from zoo.runtime.kernels._numba_env import numba, slp_enabled


def test_generated_sources_are_current() -> None:
    # run `python -m zoo.runtime.kernels._codegen` after changing the generator
    for name, src in modules().items():
        assert (GENERATED / name).read_text() == src, f"_generated/{name} is stale"


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
