"""numba helpers shared by the kernels: the fused activation."""

from __future__ import annotations

import numpy as np

from ._numba_env import numba


@numba.njit(inline="always")
def act(v: np.float32, code: int, alpha: np.float32, beta: np.float32) -> np.float32:
    """Activation by code (see ``Activation.code``): 0 none, 1 relu, 2 clip, 3 leaky."""
    if code == 1:
        return v if v > 0 else np.float32(0.0)
    if code == 2:
        return min(max(v, alpha), beta)
    if code == 3:
        return v if v >= 0 else v * alpha
    return v
