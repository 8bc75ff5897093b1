"""The OpenZoo CPU runtime: run (sparse, quantized) ONNX models with an onnxruntime-like API.

Example::

    from zoo.runtime import InferenceSession, benchmark

    sess = InferenceSession("model.onnx")              # sparse kernels where weights are sparse
    (y,) = sess.run(None, {"input": x})
    print(benchmark("model.onnx", batch_size=16).items_per_second)
"""

from zoo.runtime.benchmark import BenchmarkResult, HardwareInfo, benchmark
from zoo.runtime.errors import (
    InvalidModel,
    NodeExecutionError,
    UnsafeExternalData,
    UnsupportedOperator,
    ZooRuntimeError,
)
from zoo.runtime.session import InferenceSession, NodeArg, NodeTime

__all__ = [
    "BenchmarkResult",
    "HardwareInfo",
    "InferenceSession",
    "InvalidModel",
    "NodeArg",
    "NodeExecutionError",
    "NodeTime",
    "UnsafeExternalData",
    "UnsupportedOperator",
    "ZooRuntimeError",
    "benchmark",
]
