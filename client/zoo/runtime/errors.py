"""Errors raised by the runtime.

::

    ZooRuntimeError (RuntimeError)
    ├── InvalidModel              the model cannot be parsed, is not a DAG, or is inconsistent
    │   └── UnsafeExternalData    an external-data location points outside the model's folder
    ├── UnsupportedOperator       no implementation for this op / opset (lists what exists)
    └── NodeExecutionError        a node failed while running (node, op, input shapes, dtypes)

Every error chains the underlying exception with ``raise ... from e``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "InvalidModel",
    "NodeExecutionError",
    "UnsafeExternalData",
    "UnsupportedOperator",
    "ZooRuntimeError",
]


class ZooRuntimeError(RuntimeError):
    """Root of every error raised by :mod:`zoo.runtime`."""


class InvalidModel(ZooRuntimeError):
    """The model cannot be loaded or planned (parse error, cycle, missing value, bad feed)."""


class UnsafeExternalData(InvalidModel):
    """An external-data location is absolute, escapes the model's folder, or links outside it."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(
            f"refusing external data location {location!r}: {reason}; external tensors must "
            "live inside the model's own folder"
        )


class UnsupportedOperator(ZooRuntimeError):
    """No implementation of an operator exists for the model's opset."""

    def __init__(
        self,
        op_type: str,
        domain: str,
        opset: int,
        available: Sequence[str],
        versions: Sequence[int],
    ) -> None:
        self.op_type = op_type
        self.domain = domain or "ai.onnx"
        self.opset = opset
        self.available = list(available)
        self.versions = list(versions)
        if versions:
            what = (
                f"operator {self.domain}::{op_type} has implementations for opset "
                f"{', '.join(map(str, versions))} but the model uses opset {opset}"
            )
        else:
            what = f"operator {self.domain}::{op_type} is not implemented"
        super().__init__(f"{what}; implemented operators: {', '.join(self.available)}")


class NodeExecutionError(ZooRuntimeError):
    """A node raised while running; carries the node name, op type and its inputs' shapes/dtypes."""

    def __init__(
        self,
        node_name: str,
        op_type: str,
        input_shapes: Sequence[tuple[int, ...] | None],
        input_dtypes: Sequence[str | None],
        cause: BaseException,
    ) -> None:
        self.node_name = node_name
        self.op_type = op_type
        self.input_shapes = list(input_shapes)
        self.input_dtypes = list(input_dtypes)
        inputs = ", ".join(
            "<missing>" if s is None else f"{d}{list(s)}"
            for s, d in zip(input_shapes, input_dtypes, strict=True)
        )
        super().__init__(
            f"node {node_name!r} ({op_type}) failed on inputs ({inputs}): "
            f"{type(cause).__name__}: {cause}"
        )
