"""One-pass LayerNormalization / Softmax / LogSoftmax / Erf / GELU against independent oracles.

onnxruntime runs the same single-node model; erf is checked against ``math.erf``. Shapes
cover both the serial and the parallel kernels (``SERIAL_MAX`` elements), rows that are not
a multiple of the 8-way unrolled reductions, and rows holding -inf / +inf / NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo.runtime import InferenceSession
from zoo.runtime.kernels import erf_f32, gelu_f32
from zoo.runtime.kernels._rowwise import SERIAL_MAX

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(5)


def _both(node: Any, x: np.ndarray, inits: dict[str, np.ndarray], opset: int = 17) -> Any:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in node.output],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    ref = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return InferenceSession(model).run(None, {"x": x}), ref.run(None, {"x": x})


SHAPES = [(3, 7), (2, 5, 77), (64, 769), (4, 12, 33, 128)]  # last two: parallel (LN: last one)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_last_axis_matches_onnxruntime(shape: tuple[int, ...], op: str) -> None:
    x = (RNG.standard_normal(shape) * 8).astype(np.float32)
    x.reshape(-1, shape[-1])[0, :2] = -np.inf  # masked positions
    (got,), (want,) = _both(helper.make_node(op, ["x"], ["y"], axis=-1), x, {})
    fin = np.isfinite(want)
    assert np.array_equal(fin, np.isfinite(got))
    np.testing.assert_allclose(got[fin], want[fin], rtol=2e-5, atol=1e-6)


def test_softmax_rows_with_inf_or_nan_are_nan() -> None:
    x = RNG.standard_normal((4, 9)).astype(np.float32)
    x[1, 3], x[2, 0], x[3] = np.nan, np.inf, -np.inf
    (got,), (want,) = _both(helper.make_node("Softmax", ["x"], ["y"], axis=-1), x, {})
    assert np.isnan(got[1:]).all() and np.isnan(want[1:]).all()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    assert x.size < SERIAL_MAX  # (this case runs the serial kernel)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", [-1, -2])
def test_layer_norm_matches_onnxruntime(shape: tuple[int, ...], axis: int) -> None:
    x = (RNG.standard_normal(shape) * 3 + 2).astype(np.float32)
    d = int(np.prod(shape[axis:]))
    scale = RNG.standard_normal(shape[axis:]).astype(np.float32)
    bias = RNG.standard_normal(shape[axis:]).astype(np.float32)
    node = helper.make_node(
        "LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], axis=axis, epsilon=1e-5
    )
    got, want = _both(node, x, {"s": scale, "b": bias})
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5 * max(1.0, math.sqrt(d) / 8))


def test_layer_norm_without_bias() -> None:
    x = RNG.standard_normal((300, 130)).astype(np.float32)
    scale = RNG.standard_normal(130).astype(np.float32)
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y"], epsilon=1e-3)
    (got,), (want,) = _both(node, x, {"s": scale})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [37, SERIAL_MAX + 1001])
def test_erf_and_gelu_against_math_erf(n: int) -> None:
    x = (RNG.standard_normal(n) * 3).astype(np.float32)
    x[:8] = [0.0, -0.0, 4.0, -4.0, 9.0, -9.0, np.inf, -np.inf]
    want = np.array([math.erf(float(v)) for v in x])
    np.testing.assert_allclose(erf_f32(x), want, rtol=0, atol=1e-6)
    gelu = np.array([0.5 * float(v) * (1 + math.erf(float(v) / math.sqrt(2))) for v in x[:-2]])
    np.testing.assert_allclose(gelu_f32(x[:-2]), gelu, rtol=1e-6, atol=1e-6)
    assert np.isnan(erf_f32(np.array([np.nan], np.float32)))[0]


def test_erf_and_gelu_keep_a_transposed_layout() -> None:
    # a sparse layer hands its output on as the transpose of a C-contiguous array; the
    # elementwise kernels keep that layout (no copy) and still compute every element
    x = (RNG.standard_normal((300, 64)) * 3).astype(np.float32).T  # (64, 300), F order
    for f, one in (
        (erf_f32, math.erf),
        (gelu_f32, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    ):
        y = f(x)
        assert y.shape == x.shape and y.T.flags.c_contiguous
        want = np.vectorize(lambda v, g=one: g(float(v)))(x)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        # a batch of sequences: the (B * S, N) transposed output viewed as (B, S, N), strides
        # (S * 4, 4, B * S * 4) - neither C-contiguous nor the transpose of one
        lambda a: np.ascontiguousarray(a.reshape(12, 40).T).T.reshape(3, 4, 40),
        lambda a: np.ascontiguousarray(a.reshape(3, 4, 40).transpose(2, 0, 1)).transpose(1, 2, 0),
        lambda a: a.reshape(3, 4, 40).transpose(0, 2, 1),  # (3, 40, 4): axes 1, 2 swapped
    ],
    ids=["batch-of-transposed", "rotated", "inner-swap"],
)
def test_erf_and_gelu_keep_any_permuted_layout(make) -> None:  # type: ignore[no-untyped-def]
    # (BERT at batch 64: the copy of such a view read elements 32 KB apart and took 300 ms
    # per GELU; now the kernel runs over the memory as it lies and the result keeps it)
    x = make((RNG.standard_normal(480) * 3).astype(np.float32))
    assert not x.flags.c_contiguous and not x.T.flags.c_contiguous
    for f, one in (
        (erf_f32, math.erf),
        (gelu_f32, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    ):
        y = f(x)
        assert y.shape == x.shape and y.strides == x.strides
        want = np.vectorize(lambda v, g=one: g(float(v)))(x)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


def test_erf_of_a_strided_view_is_computed_on_a_copy() -> None:
    # not a permutation of a dense block (every other column): the kernel gets a copy
    x = (RNG.standard_normal((8, 10)) * 3).astype(np.float32)[:, ::2]
    y = erf_f32(x)
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, np.vectorize(lambda v: math.erf(float(v)))(x), atol=1e-6)
