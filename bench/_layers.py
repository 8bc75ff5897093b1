"""Per-layer kernel numbers for ``bench/runtime.py --kernels``: one ONNX node vs one kernel.

Each layer shape (the MLP's and BERT's linears, ResNet-50's conv shapes) is run as a
single-node ONNX model in onnxruntime and through ``plan_linear`` / ``plan_conv2d``, with
the sparse path and the dense path, interleaved like the model benchmark.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from zoo.runtime.kernels import plan_conv2d, plan_linear

LINEAR = [  # (name, K, N)
    ("mlp.fc1", 1024, 4096),
    ("mlp.fc2", 4096, 4096),
    ("mlp.fc3", 4096, 1000),
    ("bert.qkvo", 768, 768),
    ("bert.ffn1", 768, 3072),
    ("bert.ffn2", 3072, 768),
]
CONV = [  # (name, Cin, Cout, k, stride, input H=W)
    ("rn.conv1", 3, 64, 7, 2, 224),
    ("rn.l1.1x1", 64, 64, 1, 1, 56),
    ("rn.l1.3x3", 64, 64, 3, 1, 56),
    ("rn.l1.1x1up", 64, 256, 1, 1, 56),
    ("rn.l1.1x1dn", 256, 64, 1, 1, 56),
    ("rn.l2.3x3s2", 128, 128, 3, 2, 56),
    ("rn.l2.3x3", 128, 128, 3, 1, 28),
    ("rn.l2.ds", 256, 512, 1, 2, 56),
    ("rn.l3.3x3", 256, 256, 3, 1, 14),
    ("rn.l3.1x1dn", 1024, 256, 1, 1, 14),
    ("rn.l3.1x1up", 256, 1024, 1, 1, 14),
    ("rn.l4.3x3", 512, 512, 3, 1, 7),
    ("rn.l4.1x1dn", 2048, 512, 1, 1, 7),
]


def _session(node: Any, inits: list[Any], x_shape: list[int], threads: int) -> ort.InferenceSession:
    graph = helper.make_graph(
        [node],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    k = round(w.size * sparsity)
    if k:
        w.reshape(-1)[np.argpartition(np.abs(w).reshape(-1), k - 1)[:k]] = 0
    return w


Interleaved = Callable[[list[Callable[[], Any]], int, float], list[float]]


def _row(
    interleaved: Interleaved,
    name: str,
    sp: float,
    b: int,
    ort_run: Callable[[], Any],
    zoo: Any,
    dense: Any,
    args: argparse.Namespace,
    x: np.ndarray,
) -> None:
    t_ort, t_zoo, t_dense = interleaved(
        [ort_run, lambda: zoo(x), lambda: dense(x)], args.rounds, args.min_time
    )
    print(
        f"{name:13s} {sp:5.2f} {b:5d} {t_ort * 1e3:9.3f} {t_zoo * 1e3:9.3f} {t_ort / t_zoo:6.2f}x"
        f" {zoo.kind:20s} {t_ort / t_dense:6.2f}x",
        flush=True,
    )


def bench_layers(args: argparse.Namespace, interleaved: Interleaved) -> None:
    """Print one line per (layer, sparsity, batch): ORT ms, zoo ms, ratio, kernel, dense ratio."""
    rng = np.random.default_rng(0)
    print(
        f"{'layer':13s} {'spars':>5s} {'batch':>5s} {'ORT ms':>9s} {'zoo ms':>9s} {'ratio':>7s}"
        f" {'zoo kernel':20s} {'dense ratio':>7s}"
    )
    for sp in args.sparsity:
        for name, k, n in LINEAR:
            if not any(m in name for m in args.models):
                continue
            w = _prune(rng.standard_normal((k, n)).astype(np.float32), sp)
            b = rng.standard_normal(n).astype(np.float32)
            node = helper.make_node("Gemm", ["x", "w", "b"], ["y"])
            for batch in args.batches:
                rows = batch * 128 if name.startswith("bert") else batch
                sess = _session(
                    node,
                    [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
                    [rows, k],
                    args.threads,
                )
                x = rng.standard_normal((rows, k)).astype(np.float32)
                zoo, dense = plan_linear(w, b), plan_linear(w, b, sparse=False)
                zoo(x)
                _row(
                    interleaved,
                    name,
                    sp,
                    batch,
                    lambda s=sess, x=x: s.run(None, {"x": x}),
                    zoo,
                    dense,
                    args,
                    x,
                )
        for name, ci, co, k, s, hw in CONV:
            if "resnet50" not in args.models:
                continue
            w = _prune(rng.standard_normal((co, ci, k, k)).astype(np.float32), sp)
            b = rng.standard_normal(co).astype(np.float32)
            p = k // 2
            geo: dict[str, Any] = dict(strides=(s, s), pads=(p, p, p, p), dilations=(1, 1), group=1)
            node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[s, s], pads=[p] * 4)
            for batch in args.batches:
                sess = _session(
                    node,
                    [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
                    [batch, ci, hw, hw],
                    args.threads,
                )
                x = rng.standard_normal((batch, ci, hw, hw)).astype(np.float32)
                zoo, dense = plan_conv2d(w, b, **geo), plan_conv2d(w, b, sparse=False, **geo)
                np.testing.assert_allclose(
                    zoo(x), sess.run(None, {"x": x})[0], rtol=1e-3, atol=1e-3
                )
                _row(
                    interleaved,
                    name,
                    sp,
                    batch,
                    lambda s=sess, x=x: s.run(None, {"x": x}),
                    zoo,
                    dense,
                    args,
                    x,
                )
