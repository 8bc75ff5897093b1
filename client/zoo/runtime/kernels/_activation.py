"""Activations fused into weighted kernels (Relu, Clip, LeakyRelu)."""

from __future__ import annotations

from dataclasses import dataclass

_KINDS = ("relu", "clip", "leaky_relu")


@dataclass(frozen=True)
class Activation:
    """An elementwise activation applied to a kernel's output before it is returned.

    ``kind`` is ``"relu"``, ``"clip"`` (``alpha`` = min, ``beta`` = max) or
    ``"leaky_relu"`` (``alpha`` = slope for negative inputs).

    >>> Activation("clip", 0.0, 6.0)  # Relu6
    Activation(kind='clip', alpha=0.0, beta=6.0)
    """

    kind: str
    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown activation kind {self.kind!r}: expected one of {_KINDS}")

    def code(self) -> tuple[int, float, float]:
        """The activation as ``(code, alpha, beta)`` for numba kernels: 0 none, 1 relu,
        2 clip, 3 leaky_relu (clip's range and leaky's slope in alpha/beta)."""
        return (_KINDS.index(self.kind) + 1, float(self.alpha), float(self.beta))


def activation_code(act: Activation | None) -> tuple[int, float, float]:
    """``act.code()``, or the "no activation" code for ``None``."""
    return (0, 0.0, 0.0) if act is None else act.code()
