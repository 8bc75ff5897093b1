"""Planner behaviour: topological order, cycles, constant folding, fusion, buffer release."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo.runtime import InferenceSession, InvalidModel

ort = pytest.importorskip("onnxruntime")


def _model(
    nodes: list[onnx.NodeProto],
    inits: Mapping[str, np.ndarray[Any, Any]],
    inputs: list[tuple[str, list[int]]],
    outputs: list[str],
    opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(model: onnx.ModelProto, feeds: dict[str, Any]) -> list[Any]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return list(sess.run(None, feeds))


def _ops(sess: InferenceSession) -> list[str]:
    return [step.node.op_type for step in sess.plan.steps]


RNG = np.random.default_rng(0)


def test_unsorted_graph_is_ordered() -> None:
    nodes = [
        helper.make_node("Relu", ["b"], ["y"], name="last"),
        helper.make_node("Add", ["a", "one"], ["b"], name="middle"),
        helper.make_node("Neg", ["x"], ["a"], name="first"),
    ]
    model = _model(nodes, {"one": np.float32(1)}, [("x", [3])], ["y"])
    x = np.array([-2.0, 0.5, 3.0], np.float32)
    sess = InferenceSession(model)
    assert [s.node.name for s in sess.plan.steps] == ["first", "middle", "last"]
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(-x + 1, 0))


def test_cycle_is_an_invalid_model() -> None:
    nodes = [
        helper.make_node("Add", ["x", "c"], ["b"], name="n1"),
        helper.make_node("Relu", ["b"], ["c"], name="n2"),
    ]
    model = _model(nodes, {}, [("x", [3])], ["c"])
    with pytest.raises(InvalidModel, match="cycle"):
        InferenceSession(model)


def test_missing_value_is_an_invalid_model() -> None:
    model = _model(
        [helper.make_node("Relu", ["nowhere"], ["y"], name="r")], {}, [("x", [1])], ["y"]
    )
    with pytest.raises(InvalidModel, match="nowhere"):
        InferenceSession(model)


def test_constant_subgraphs_are_folded_at_plan_time() -> None:
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const", value_float=2.0),
        helper.make_node("Mul", ["c", "w"], ["w2"], name="scale_w"),
        helper.make_node("Sqrt", ["w2"], ["w3"], name="sqrt_w"),
        helper.make_node("Add", ["x", "w3"], ["y"], name="add"),
    ]
    w = np.array([1.0, 8.0, 18.0], np.float32)
    model = _model(nodes, {"w": w}, [("x", [3])], ["y"])
    sess = InferenceSession(model)
    assert set(sess.plan.folded) == {"const", "scale_w", "sqrt_w"}
    assert _ops(sess) == ["Add"]
    x = RNG.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-6)


def test_dequantized_weight_is_folded_into_a_float_kernel() -> None:
    wq = RNG.integers(-127, 128, (16, 8)).astype(np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["w"], name="dq"),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]
    inits = {"wq": wq, "s": np.float32(0.02), "zp": np.int8(0)}
    model = _model(nodes, inits, [("x", [4, 16])], ["y"], opset=13)
    sess = InferenceSession(model)
    assert sess.plan.folded == ["dq"]
    assert getattr(sess.plan.steps[0].op, "kernel", None) is not None
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    # The spec's semantics, x @ ((wq - zp) * s); onnxruntime's optimizer would instead rewrite
    # DQ+MatMul into a dynamically quantized matmul, which is a different computation.
    expected = x @ (wq.astype(np.float32) * np.float32(0.02))
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-6)


def _conv_bn_relu(consumers: int) -> onnx.ModelProto:
    c = 4
    inits = {
        "w": RNG.standard_normal((c, 3, 3, 3)).astype(np.float32),
        "scale": RNG.uniform(0.5, 1.5, c).astype(np.float32),
        "bias": RNG.standard_normal(c).astype(np.float32),
        "mean": RNG.standard_normal(c).astype(np.float32),
        "var": RNG.uniform(0.5, 1.5, c).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"], name="bn"
        ),
        helper.make_node("Relu", ["b"], ["y"], name="relu"),
    ]
    outputs = ["y"]
    if consumers == 2:
        nodes.append(helper.make_node("Neg", ["b"], ["z"], name="other"))
        outputs.append("z")
    return _model(nodes, inits, [("x", [1, 3, 8, 8])], outputs)


def test_conv_batchnorm_relu_fuse_into_one_conv() -> None:
    model = _conv_bn_relu(consumers=1)
    sess = InferenceSession(model)
    assert _ops(sess) == ["Conv"]
    assert sess.plan.steps[0].node.attrs["_activation"].kind == "relu"
    assert any(f.startswith("Conv+BatchNormalization") for f in sess.plan.fusions)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5
    )


def test_activation_is_not_fused_when_the_value_has_other_readers() -> None:
    model = _conv_bn_relu(consumers=2)
    sess = InferenceSession(model)
    assert _ops(sess) == ["Conv", "Relu", "Neg"]  # BN folded, Relu kept: "b" is read twice
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    for got, ref in zip(sess.run(None, {"x": x}), _ort(model, {"x": x}), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("act", "attrs", "extra"),
    [("Relu", {}, {}), ("LeakyRelu", {"alpha": 0.1}, {}), ("Clip", {}, {"lo": 0.0, "hi": 6.0})],
)
def test_matmul_bias_activation_fuse(
    act: str, attrs: dict[str, float], extra: dict[str, float]
) -> None:
    inits: dict[str, Any] = {
        "w": RNG.standard_normal((16, 8)).astype(np.float32),
        "b": RNG.standard_normal(8).astype(np.float32),
    }
    inits.update({k: np.float32(v) for k, v in extra.items()})
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["a"], name="bias"),
        helper.make_node(act, ["a", *extra], ["y"], name="act", **attrs),
    ]
    model = _model(nodes, inits, [("x", [2, 5, 16])], ["y"])
    sess = InferenceSession(model)
    assert _ops(sess) == ["MatMul"]
    x = RNG.standard_normal((2, 5, 16)).astype(np.float32) * 3
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6
    )


def test_gemm_relu_fuse() -> None:
    inits = {"w": RNG.standard_normal((8, 16)).astype(np.float32), "c": np.ones(8, np.float32)}
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["g"], name="gemm", transB=1, alpha=0.5),
        helper.make_node("Relu", ["g"], ["y"], name="relu"),
    ]
    model = _model(nodes, inits, [("x", [3, 16])], ["y"])
    sess = InferenceSession(model)
    assert _ops(sess) == ["Gemm"]
    x = RNG.standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6
    )


def test_intermediate_values_are_released_after_their_last_use() -> None:
    n = 30
    nodes = [helper.make_node("Relu", ["x"], ["v0"], name="r0")]
    for i in range(1, n):
        nodes.append(helper.make_node("Add", [f"v{i - 1}", "x"], [f"v{i}"], name=f"a{i}"))
    model = _model(nodes, {}, [("x", [4])], [f"v{n - 1}"])
    sess = InferenceSession(model)
    # Each value dies right after the node that reads it last.
    assert sess.plan.steps[1].release == ("v0",)
    live: list[int] = []
    x = np.ones(4, np.float32)
    (y,) = sess.run(None, {"x": x}, on_step=lambda i, values: live.append(len(values)))
    assert max(live) <= 2  # x and the newest value, never the whole chain
    np.testing.assert_array_equal(y, np.full(4, n, np.float32))


def test_unused_optional_outputs_are_released_at_once() -> None:
    nodes = [
        helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
        helper.make_node("Relu", ["d"], ["y"], name="relu"),
    ]
    sess = InferenceSession(_model(nodes, {}, [("x", [4])], ["y"]))
    assert "mask" in sess.plan.steps[0].release


def test_softmax_before_opset_13_flattens_at_axis() -> None:
    # Opset 11 Softmax normalises over all dims from `axis` on; opset 13 over `axis` only.
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    for opset in (11, 13):
        model = _model(
            [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
            {},
            [("x", [2, 3, 4])],
            ["y"],
            opset,
        )
        got = InferenceSession(model).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-7)


def test_initializers_listed_as_inputs_are_planned_as_constants() -> None:
    # Old exporters list every weight among the graph inputs (keep_initializers_as_inputs).
    w = RNG.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    sess = InferenceSession(model)
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert getattr(sess.plan.steps[0].op, "kernel", None) is not None
    x = RNG.standard_normal((2, 16)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ w, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidModel, match="initializer"):
        sess.run(None, {"x": x, "w": w})


def test_sparse_flag_drives_the_kernel_choice() -> None:
    from zoo.testing.models import mlp, prune

    model = prune(mlp(), 0.95)
    dense = InferenceSession(model, sparse=False)
    kinds = [s.op.kernel_kind for s in dense.plan.steps if s.op.kernel_kind]
    assert len(kinds) == 3 and all(k.startswith("dense") for k in kinds)
    # 95 % zeros: the kernels planner measures the weights and picks a sparse kernel.
    sparse = InferenceSession(model, sparse=True)
    assert any("sparse" in (s.op.kernel_kind or "") for s in sparse.plan.steps)


def test_requesting_one_output_runs_only_what_it_needs() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="cheap"),
        helper.make_node("Neg", ["x"], ["b"], name="other"),
    ]
    sess = InferenceSession(_model(nodes, {}, [("x", [3])], ["a", "b"]))
    ran: list[int] = []
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    (a,) = sess.run(["a"], {"x": x}, on_step=lambda i, _: ran.append(i))
    assert len(ran) == 1
    np.testing.assert_array_equal(a, np.maximum(x, 0))
    b, a2 = sess.run(["b", "a"], {"x": x})
    np.testing.assert_array_equal(b, -x)
    np.testing.assert_array_equal(a2, a)


def test_sparse_initializers_are_densified() -> None:
    w = np.zeros((6, 4), np.float32)
    w[[0, 2, 5], [1, 3, 0]] = [1.5, -2.0, 3.0]
    flat = np.flatnonzero(w)
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(w.reshape(-1)[flat], "w"),
        numpy_helper.from_array(flat.astype(np.int64), "w_idx"),
        [6, 4],
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(InferenceSession(model).run(None, {"x": x})[0], x @ w, rtol=1e-6)


def _gelu_nodes(order: str) -> list[onnx.NodeProto]:
    scaled = (
        helper.make_node("Div", ["x", "sqrt2"], ["s"])
        if order != "mul-scale"
        else helper.make_node("Mul", ["inv_sqrt2", "x"], ["s"])
    )
    core = [
        scaled,
        helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["one", "e"], ["a"]),
    ]
    if order == "half-last" or order == "mul-scale":  # Mul(Mul(x, Add), 0.5), torch.onnx
        return [
            *core,
            helper.make_node("Mul", ["x", "a"], ["m"]),
            helper.make_node("Mul", ["m", "half"], ["y"]),
        ]
    # Mul(Mul(x, 0.5), Add), as x * 0.5 * (1 + erf(...)) exports
    return [
        *core,
        helper.make_node("Mul", ["half", "x"], ["h"]),
        helper.make_node("Mul", ["h", "a"], ["y"]),
    ]


@pytest.mark.parametrize("order", ["half-last", "half-first", "mul-scale"])
def test_erf_gelu_pattern_fuses_into_one_gelu(order: str) -> None:
    consts = {
        "sqrt2": np.float32(np.sqrt(2)),
        "inv_sqrt2": np.float32(np.sqrt(0.5)),
        "one": np.float32(1),
        "half": np.float32(0.5),
    }
    model = _model(_gelu_nodes(order), consts, [("x", [4, 300])], ["y"])
    x = (RNG.standard_normal((4, 300)) * 4).astype(np.float32)
    sess = InferenceSession(model)
    assert _ops(sess) == ["Gelu"]
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], atol=2e-6)


def test_gelu_is_not_fused_when_an_inner_value_is_read_elsewhere() -> None:
    nodes = [*_gelu_nodes("half-last"), helper.make_node("Neg", ["e"], ["z"])]
    consts = {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5)}
    model = _model(nodes, consts, [("x", [8])], ["y", "z"])
    x = RNG.standard_normal(8).astype(np.float32)
    sess = InferenceSession(model)
    assert "Gelu" not in _ops(sess)
    for got, want in zip(sess.run(None, {"x": x}), _ort(model, {"x": x}), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-6)


def test_released_intermediates_are_reused_for_later_outputs() -> None:
    # two same-shape Relu steps: the second may write into the first's released buffer, and
    # values a callback still holds must never be reused
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["b"]),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Neg", ["c"], ["y"]),
    ]
    model = _model(nodes, {}, [("x", [512, 1024])], ["y"])
    x = RNG.standard_normal((512, 1024)).astype(np.float32)
    sess = InferenceSession(model)
    kept: list[Any] = []
    for _ in range(3):
        got = sess.run(None, {"x": x}, on_step=lambda i, v: kept.append(v.get("a")))
        np.testing.assert_array_equal(got[0], -np.maximum(-np.maximum(x, 0), 0))
    for a in kept:
        if a is not None:
            np.testing.assert_array_equal(a, np.maximum(x, 0))


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
@pytest.mark.parametrize("batch", [1, 3])
def test_residual_add_and_relu_fuse_into_the_conv(sparsity: float, batch: int) -> None:
    # ResNet's block end: Relu(Add(Conv(x), Conv_ds(x))), the shortcut computed after the
    # main conv in file order
    w = RNG.standard_normal((8, 4, 3, 3)).astype(np.float32)
    w[RNG.random(w.shape) < sparsity] = 0
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="main"),
        helper.make_node("Conv", ["x", "wd"], ["d"], name="shortcut"),
        helper.make_node("Add", ["c", "d"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu"),
    ]
    inits = {
        "w": w,
        "b": RNG.standard_normal(8).astype(np.float32),
        "wd": RNG.standard_normal((8, 4, 1, 1)).astype(np.float32),
    }
    model = _model(nodes, inits, [("x", ["n", 4, 9, 9])], ["y"])  # type: ignore[list-item]
    x = RNG.standard_normal((batch, 4, 9, 9)).astype(np.float32)
    sess = InferenceSession(model)
    assert _ops(sess) == ["Conv", "Conv"]
    assert any(f.startswith("Conv+Add residual") for f in sess.plan.fusions)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5
    )


def test_broadcasting_residual_add_is_not_fused() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Add", ["c", "r"], ["y"]),
    ]
    model = _model(
        nodes,
        {"w": RNG.standard_normal((2, 3, 1, 1)).astype(np.float32)},
        [("x", [1, 3, 4, 4]), ("r", [1, 2, 1, 4])],
        ["y"],
    )
    feeds = {
        "x": RNG.standard_normal((1, 3, 4, 4)).astype(np.float32),
        "r": RNG.standard_normal((1, 2, 1, 4)).astype(np.float32),
    }
    sess = InferenceSession(model)
    assert _ops(sess) == ["Conv", "Add"]
    np.testing.assert_allclose(
        sess.run(None, feeds)[0], _ort(model, feeds)[0], rtol=1e-5, atol=1e-6
    )


def test_profile_times_every_step() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r"),
        helper.make_node("Neg", ["a"], ["y"]),
    ]
    model = _model(nodes, {}, [("x", [4])], ["y"])
    sess = InferenceSession(model, profile=True)
    for _ in range(3):
        sess.run(None, {"x": np.ones(4, np.float32)})
    times = sess.node_times()
    assert sorted(t.op_type for t in times) == ["Neg", "Relu"]
    assert all(t.calls == 3 and t.seconds > 0 for t in times)
    with pytest.raises(ValueError, match="profile=True"):
        InferenceSession(model).node_times()


def _weight(shape: tuple[int, int], sparsity: float) -> np.ndarray[Any, Any]:
    w = RNG.standard_normal(shape).astype(np.float32)
    w[RNG.random(shape) < sparsity] = 0
    return w


def _attention_projections(
    k_act: str | None,
    v_sparsity: float,
    scale: tuple[str, float] | None = None,
) -> onnx.ModelProto:
    """x -> Q, K, V projections (Q and V with a bias Add) -> two heads -> softmax(Q K^T) V:
    attention reading its sibling MatMuls' outputs, in a small graph; with ``scale`` (op,
    constant), the scores are scaled before the softmax."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q0"], name="q"),
        helper.make_node("Add", ["q0", "bq"], ["q"], name="q_bias"),
        helper.make_node("MatMul", ["x", "wk"], ["k0"], name="k"),
        helper.make_node("MatMul", ["x", "wv"], ["v0"], name="v"),
        helper.make_node("Add", ["bv", "v0"], ["v"], name="v_bias"),
        helper.make_node("Reshape", ["q", "heads"], ["qh"]),
        helper.make_node("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k0", "heads"], ["kh"]),
        helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["qt", "kt"], ["scores"], name="qk"),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("Reshape", ["v", "heads"], ["vh"]),
        helper.make_node("Transpose", ["vh"], ["vt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["p", "vt"], ["ctx"], name="pv"),
        helper.make_node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ct", "flat"], ["y"]),
    ]
    if k_act is not None:
        nodes[2].output[0] = "k_pre"
        nodes.insert(3, helper.make_node(k_act, ["k_pre"], ["k0"], name="k_act"))
    extra: dict[str, Any] = {}
    if scale is not None:
        at = next(i for i, n in enumerate(nodes) if n.name == "qk")
        nodes[at].output[0] = "raw"
        nodes.insert(at + 1, helper.make_node(scale[0], ["raw", "c"], ["scores"], name="scale"))
        extra["c"] = np.float32(scale[1])
    inits: dict[str, Any] = {
        **extra,
        "wq": _weight((16, 8), 0.0),
        "bq": RNG.standard_normal(8).astype(np.float32),
        "wk": _weight((16, 8), 0.0),
        "wv": _weight((16, 8), v_sparsity),
        "bv": RNG.standard_normal(8).astype(np.float32),
        "heads": np.array([0, 0, 2, 4], np.int64),
        "flat": np.array([0, 0, 8], np.int64),
    }
    return _model(nodes, inits, [("x", ["b", "s", 16])], ["y"])  # type: ignore[list-item]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 4, 16), (3, 5, 16)])
def test_sibling_matmuls_merge_into_one_gemm(threads: int, shape: tuple[int, ...]) -> None:
    model = _attention_projections(k_act=None, v_sparsity=0.0)
    sess = InferenceSession(model, threads=threads)
    assert sess.plan.fusions[-1] == "MatMul siblings: q+k+v"
    matmuls = [s.node.name for s in sess.plan.steps if s.node.op_type == "MatMul"]
    assert matmuls == ["q+k+v", "qk", "pv"]
    x = RNG.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("k_act", "v_sparsity", "merged"),
    [("Relu", 0.0, "q+v"), (None, 0.95, "q+k"), ("Relu", 0.95, None)],
)
def test_siblings_merge_only_with_the_same_activation_and_kernel_kind(
    k_act: str | None, v_sparsity: float, merged: str | None
) -> None:
    # a fused Relu, or a sparse weight among dense ones, keeps that sibling on its own
    model = _attention_projections(k_act=k_act, v_sparsity=v_sparsity)
    sess = InferenceSession(model)
    names = {s.node.name for s in sess.plan.steps if s.node.op_type == "MatMul"}
    assert (merged in names) if merged else not any("+" in n for n in names)
    assert len(names) == (4 if merged else 5)
    x = RNG.standard_normal((2, 3, 16)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5
    )


def test_sibling_that_is_a_graph_output_is_not_merged() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["y1"], name="a"),
        helper.make_node("MatMul", ["x", "w2"], ["h"], name="b"),
        helper.make_node("Relu", ["h"], ["y2"]),
    ]
    inits = {"w1": _weight((6, 4), 0.0), "w2": _weight((6, 5), 0.0)}
    model = _model(nodes, inits, [("x", [3, 6])], ["y1", "y2"])
    sess = InferenceSession(model)
    assert {s.node.name for s in sess.plan.steps} == {"a", "b"}
    x = RNG.standard_normal((3, 6)).astype(np.float32)
    y1 = sess.run(["y1"], {"x": x})[0]
    assert y1.flags.c_contiguous
    np.testing.assert_allclose(y1, x @ inits["w1"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
@pytest.mark.parametrize(
    "r_shape",
    [(3, 5, 8), (8,), (1, 5, 1), (2, 3, 5, 8)],
    ids=["same", "row", "broadcast", "higher-rank"],
)
def test_residual_add_fuses_into_the_matmul(sparsity: float, r_shape: tuple[int, ...]) -> None:
    # a transformer's projection + bias + residual; the MatMul's input comes from a Reshape,
    # as in attention, so shape inference cannot tell whether the Add broadcasts
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["xr"]),
        helper.make_node("MatMul", ["xr", "w"], ["m"], name="proj"),
        helper.make_node("Add", ["m", "b"], ["mb"], name="bias"),
        helper.make_node("Add", ["r", "mb"], ["y"], name="residual"),
    ]
    inits = {
        "w": _weight((16, 8), sparsity),
        "b": RNG.standard_normal(8).astype(np.float32),
        "shape": np.array([0, 0, -1], np.int64),
    }
    model = _model(nodes, inits, [("x", [3, 5, 4, 4]), ("r", list(r_shape))], ["y"])
    sess = InferenceSession(model, threads=2)
    assert _ops(sess) == ["Reshape", "MatMul"]
    assert sess.plan.fusions[-1] == "MatMul+Add residual: proj <- residual"
    feeds = {
        "x": RNG.standard_normal((3, 5, 4, 4)).astype(np.float32),
        "r": RNG.standard_normal(r_shape).astype(np.float32),
    }
    np.testing.assert_allclose(
        sess.run(None, feeds)[0], _ort(model, feeds)[0], rtol=1e-5, atol=1e-5
    )


def test_residual_add_is_not_fused_after_an_activation() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="proj"),
        helper.make_node("Relu", ["m"], ["a"]),
        helper.make_node("Add", ["a", "r"], ["y"]),
    ]
    model = _model(nodes, {"w": _weight((6, 4), 0.0)}, [("x", [3, 6]), ("r", [3, 4])], ["y"])
    sess = InferenceSession(model)
    assert _ops(sess) == ["MatMul", "Add"]
    feeds = {
        "x": RNG.standard_normal((3, 6)).astype(np.float32),
        "r": RNG.standard_normal((3, 4)).astype(np.float32),
    }
    np.testing.assert_allclose(
        sess.run(None, feeds)[0], _ort(model, feeds)[0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_layer_chain_passes_transposed_outputs(threads: int) -> None:
    from zoo.testing import models

    model = models.prune(models.mlp(40, (48, 24), 10), 0.9)
    sess = InferenceSession(model, threads=threads)
    chained = [f for f in sess.plan.fusions if f.startswith("MatMul transposed output")]
    assert len(chained) == 2  # the last layer's output is the graph output: C order
    for batch in (1, 3, 8, 64, 72):
        x = RNG.standard_normal((batch, 40)).astype(np.float32)
        y = sess.run(None, {"x": x})[0]
        assert y.flags.c_contiguous
        np.testing.assert_allclose(y, _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_layout_is_not_chained_into_a_dense_reader() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="sparse"),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="dense"),
    ]
    inits = {"w1": _weight((16, 24), 0.9), "w2": _weight((24, 8), 0.0)}
    model = _model(nodes, inits, [("x", ["b", 16])], ["y"])  # type: ignore[list-item]
    sess = InferenceSession(model)
    assert not any("transposed" in f for f in sess.plan.fusions)
    x = RNG.standard_normal((16, 16)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_feed_forward_block_passes_the_transposed_layout_through_gelu(batch: int) -> None:
    # a transformer's feed-forward block: up-projection + bias, exact GELU (erf pattern),
    # down-projection + bias + residual; both projections sparse
    consts: dict[str, Any] = {
        "sqrt2": np.float32(np.sqrt(2)),
        "one": np.float32(1),
        "half": np.float32(0.5),
        "w1": _weight((24, 64), 0.9),
        "b1": RNG.standard_normal(64).astype(np.float32),
        "w2": _weight((64, 24), 0.9),
        "b2": RNG.standard_normal(24).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["inp", "w1"], ["u"], name="up"),
        helper.make_node("Add", ["u", "b1"], ["x"]),
        *_gelu_nodes("half-last"),
        helper.make_node("MatMul", ["y", "w2"], ["d"], name="down"),
        helper.make_node("Add", ["d", "b2"], ["db"]),
        helper.make_node("Add", ["db", "inp"], ["out"]),
    ]
    model = _model(nodes, consts, [("inp", ["b", 16, 24])], ["out"])  # type: ignore[list-item]
    sess = InferenceSession(model, threads=2)
    assert any(f.startswith("MatMul transposed output: up -> ") for f in sess.plan.fusions)
    assert _ops(sess) == ["MatMul", "Gelu", "MatMul"]
    x = RNG.standard_normal((batch, 16, 24)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"inp": x})[0], _ort(model, {"inp": x})[0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("k_act", "v_sparsity"),
    [(None, 0.0), (None, 0.9), ("Relu", 0.95)],
    ids=["q+k+v", "q+k", "q-alone"],  # what the Q projection is merged with
)
@pytest.mark.parametrize(
    ("scale", "folded"),
    [(("Div", 8.0), True), (("Mul", 0.125), True), (("Div", 3.0), False)],
    ids=["div-8", "mul-eighth", "div-3"],
)
def test_power_of_two_attention_scale_folds_into_the_q_projection(
    scale: tuple[str, float], folded: bool, k_act: str | None, v_sparsity: float
) -> None:
    model = _attention_projections(k_act=k_act, v_sparsity=v_sparsity, scale=scale)
    sess = InferenceSession(model, threads=2)
    assert any(f.startswith("attention scale into") for f in sess.plan.fusions) == folded
    assert ("scale" in {s.node.name for s in sess.plan.steps}) != folded
    x = RNG.standard_normal((2, 8, 16)).astype(np.float32)
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5
    )
