"""The op table: one small class per operator, picked by domain, type and opset.

An op class names the ONNX operator it implements and the opset ``since`` which its
semantics hold; :func:`resolve` returns the highest implementation at or below the model's
opset, like onnx's reference evaluator. Op classes speak ONNX (attributes, optional inputs,
opset differences) and delegate the arithmetic to numpy or to :mod:`zoo.runtime.kernels`.

Example of an extension::

    @register
    class Relu(OpRun):
        op_type = "Relu"
        since = 6

        def run(self, x: Array) -> tuple[Array]:
            return (np.maximum(x, 0).astype(x.dtype),)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from zoo.runtime.errors import UnsupportedOperator

__all__ = ["Array", "BuildContext", "Node", "OpRun", "available", "register", "resolve"]

Array: TypeAlias = npt.NDArray[Any]


@dataclass
class Node:
    """A graph node as the planner sees it; ``inputs`` uses "" for an omitted optional input.

    Attributes whose name starts with ``_`` are added by the planner (e.g. ``_activation``).
    """

    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildContext:
    """What an op may know at plan time: the opset, the constants, the kernel policy."""

    opset: int
    constants: Mapping[str, Array]
    sparse: bool = True


class OpRun:
    """Base of every op adapter. Subclasses set ``op_type``/``since`` and implement ``run``."""

    op_type: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    since: ClassVar[int] = 1
    #: The planned kernel's ``.kind`` ("dense-packed", "sparse-csr-b1", ...) for weighted ops.
    kernel_kind: str | None = None

    def __init__(self, node: Node, ctx: BuildContext) -> None:
        self.node = node
        self.ctx = ctx
        self.opset = ctx.opset
        self.setup()

    def setup(self) -> None:
        """Parse attributes and prepare kernels once, at plan time."""

    def attr(self, name: str, default: Any = None) -> Any:
        """The attribute ``name`` of the node, or ``default`` when absent."""
        return self.node.attrs.get(name, default)

    def const_input(self, i: int) -> Array | None:
        """Input ``i`` if it is a plan-time constant, else None."""
        if i >= len(self.node.inputs) or not self.node.inputs[i]:
            return None
        return self.ctx.constants.get(self.node.inputs[i])

    def _runtime_input(self, i: int) -> bool:
        """True when input ``i`` is present but only known at run time."""
        present = i < len(self.node.inputs) and bool(self.node.inputs[i])
        return present and self.const_input(i) is None

    def run(self, *inputs: Any) -> tuple[Any, ...]:
        """Compute the node's outputs from its inputs (None for omitted optional inputs)."""
        raise NotImplementedError


_TABLE: dict[tuple[str, str], list[type[OpRun]]] = defaultdict(list)
_Op = TypeVar("_Op", bound=type[OpRun])


def _norm_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def register(cls: _Op) -> _Op:
    """Class decorator adding an op implementation to the table."""
    versions = _TABLE[(_norm_domain(cls.domain), cls.op_type)]
    if any(v.since == cls.since for v in versions):
        raise ValueError(f"{cls.op_type} since {cls.since} registered twice")
    versions.append(cls)
    versions.sort(key=lambda c: c.since)
    return cls


def available() -> list[str]:
    """Every implemented operator, as ``Op`` or ``domain::Op``, sorted."""
    _load_ops()
    return sorted(f"{d}::{o}" if d else o for (d, o) in _TABLE)


def resolve(domain: str, op_type: str, opset: int) -> type[OpRun]:
    """The highest implementation of ``domain::op_type`` at or below ``opset``."""
    _load_ops()
    versions = _TABLE.get((_norm_domain(domain), op_type), [])
    best = None
    for cls in versions:
        if cls.since <= opset:
            best = cls
    if best is None:
        raise UnsupportedOperator(op_type, domain, opset, available(), [c.since for c in versions])
    return best


def _load_ops() -> None:
    # Importing the package registers every op module; deferred to avoid an import cycle.
    import zoo.runtime.ops  # noqa: F401


def as_array(value: Any, dtype: npt.DTypeLike | None = None) -> Array:
    """``np.asarray`` typed for the op modules."""
    return np.asarray(value, dtype=dtype)
