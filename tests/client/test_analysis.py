"""zoo.analysis against numbers worked out by hand on small models built with onnx.helper, and
``zoo analyze`` through typer's CliRunner.

FLOPs: one multiply-add = 2 FLOPs, batch 1 for symbolic dims, weight products only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import typer
from onnx import ModelProto, TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data
from typer.testing import CliRunner

from zoo.analysis import AnalysisError, LayerAnalysis, ModelAnalysis, analyze_model
from zoo.cli import app

F, I8, U8, I32, I64 = (
    TensorProto.FLOAT,
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.INT32,
    TensorProto.INT64,
)


def build(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[Any]]],
    outputs: list[tuple[str, int, list[Any]]],
    inits: dict[str, np.ndarray],
) -> ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def only(analysis: ModelAnalysis) -> LayerAnalysis:
    assert len(analysis.layers) == 1, analysis.layers
    return analysis.layers[0]


def conv_model() -> ModelProto:
    """X (batch, 4, 7, 7) * W (2, 4, 3, 3), stride 2, pad 1 -> Y (batch, 2, 4, 4)."""
    w = np.ones((2, 4, 3, 3), np.float32)
    w[0, :, 0, 0] = 0  # 4 zeros along the input channels: one all-zero 4-block
    w[1, 0:2, 1, 1] = 0  # 2 zeros: half a block, not an all-zero one
    conv = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1]
    )
    return build(
        [conv],
        [("x", F, ["batch", 4, 7, 7])],
        [("y", F, ["batch", 2, 4, 4])],
        {"w": w, "b": np.zeros(2, np.float32)},
    )


def test_conv_by_hand() -> None:
    a = analyze_model(conv_model())
    layer = only(a)
    assert (layer.op_type, layer.weight, layer.shape) == ("Conv", "w", (2, 4, 3, 3))
    assert (layer.params, layer.zeros, layer.bias_params) == (72, 6, 2)
    assert layer.sparsity == pytest.approx(6 / 72)
    # Input channels (4) move last: (2, 3, 3, 4) -> 18 blocks, one of them all zero.
    assert (layer.blocks, layer.zero_blocks) == (18, 1)
    assert layer.block4_sparsity == pytest.approx(1 / 18)
    # Output (1, 2, 4, 4): each of the 16 positions uses all 72 weights once -> 1152 MACs.
    assert layer.dense_flops == 2 * 16 * 72 == 2304
    assert layer.sparse_flops == 2 * 16 * (72 - 6) == 2112
    assert (layer.dtype, layer.bits, layer.quantized, layer.per_channel) == (
        "float32",
        32,
        False,
        False,
    )
    assert (a.total_params, a.prunable_params, a.prunable_zeros) == (74, 72, 6)
    assert (a.dense_flops, a.sparse_flops, a.flops_complete) == (2304, 2112, True)
    assert a.sparsity == pytest.approx(6 / 72) and not a.quantized
    assert a.file_size == conv_model().ByteSize()


def test_gemm_trans_b_blocks_run_along_k() -> None:
    w = np.ones((3, 6), np.float32)  # (N, K) with transB=1
    w[0, 0:4] = 0  # a full block
    w[1, 4:6] = 0  # the last, padded block of row 1 (K = 6 -> blocks [0:4], [4:6] + pad)
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    a = analyze_model(build([gemm], [("x", F, ["batch", 6])], [("y", F, ["batch", 3])], {"w": w}))
    layer = only(a)
    assert (layer.params, layer.zeros, layer.blocks, layer.zero_blocks) == (18, 6, 6, 2)
    assert (layer.dense_flops, layer.sparse_flops) == (2 * 18, 2 * 12)
    # The same weights stored (K, N) without transB give the same blocks.
    plain = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")
    b = analyze_model(
        build([plain], [("x", F, ["batch", 6])], [("y", F, ["batch", 3])], {"w": w.T.copy()})
    )
    assert (only(b).blocks, only(b).zero_blocks) == (6, 2)


def test_matmul_constant_weight_and_activation_matmul() -> None:
    w = np.ones((8, 4), np.float32)  # (K, N)
    w[0:4, 0] = 0  # one block along K in column 0
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
        # (1, 5, 4) @ (1, 4, 5): two activations, no weight -> not a layer
        helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["h", "ht"], ["y"], name="scores"),
    ]
    a = analyze_model(
        build(nodes, [("x", F, ["batch", 5, 8])], [("y", F, ["batch", 5, 5])], {"w": w})
    )
    layer = only(a)
    assert (layer.node, layer.params, layer.zeros) == ("proj", 32, 4)
    assert (layer.blocks, layer.zero_blocks) == (8, 1)
    # (1, 5, 8) @ (8, 4): 5 rows x 32 weights = 160 MACs.
    assert (layer.dense_flops, layer.sparse_flops) == (320, 2 * 5 * 28)


def test_gather_embedding_is_weighted_but_not_prunable() -> None:
    table = np.ones((10, 8), np.float32)
    table[0] = 0  # the padding row
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
        # A gather from a constant with constant indices is shape arithmetic, not a lookup.
        helper.make_node("Gather", ["table", "two"], ["row"], name="const_gather"),
    ]
    model = build(
        nodes,
        [("ids", I64, ["batch", 3])],
        [("emb", F, ["batch", 3, 8]), ("row", F, [8])],
        {"table": table, "two": np.array(2, np.int64)},
    )
    a = analyze_model(model)
    layer = only(a)
    assert (layer.op_type, layer.params, layer.zeros, layer.prunable) == ("Gather", 80, 8, False)
    assert layer.block4_sparsity == pytest.approx(2 / 20)  # (10, 8): 20 blocks, row 0's two
    assert (layer.dense_flops, layer.sparse_flops) == (0, 0)
    assert (a.prunable_params, a.sparsity, a.total_params) == (0, 0.0, 80)


def test_qdq_per_channel_zero_points() -> None:
    """A weight counts as zero where it equals its channel's zero point, not where it is 0."""
    wq = np.array([[0, 0, 1, 2], [5, 5, 5, 5], [0, -3, 7, 0]], np.int8).reshape(3, 4, 1, 1)
    zp = np.array([0, 5, -3], np.int8)
    scale = np.array([0.1, 0.2, 0.3], np.float32)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "scale", "zp"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], name="qconv"),
    ]
    model = build(
        nodes,
        [("x", F, [1, 4, 2, 2])],
        [("y", F, [1, 3, 2, 2])],
        {"wq": wq, "scale": scale, "zp": zp},
    )
    dequantized = (wq.astype(np.float32) - zp.reshape(3, 1, 1, 1)) * scale.reshape(3, 1, 1, 1)
    assert int(np.count_nonzero(dequantized == 0)) == 7  # the oracle agrees with the hand count
    layer = only(analyze_model(model))
    assert (layer.weight, layer.params, layer.zeros) == ("wq", 12, 7)
    assert (layer.blocks, layer.zero_blocks) == (3, 1)  # channel 1 is one all-zero block
    assert (layer.dtype, layer.bits, layer.quantized, layer.per_channel) == ("int8", 8, True, True)
    assert (layer.dense_flops, layer.sparse_flops) == (2 * 4 * 12, 2 * 4 * 5)


def test_qdq_matmul_zero_points_per_column() -> None:
    wq = np.array([[1, -1], [1, 0], [0, -1], [3, -1]], np.int8)  # (K, N), zp per column N
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "scale", "zp"], ["w"], axis=1),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="fc"),
    ]
    model = build(
        nodes,
        [("x", F, ["batch", 4])],
        [("y", F, ["batch", 2])],
        {"wq": wq, "scale": np.array([0.5, 0.25], np.float32), "zp": np.array([1, -1], np.int8)},
    )
    a = analyze_model(model)
    layer = only(a)
    assert (layer.zeros, layer.zero_blocks, layer.per_channel) == (5, 0, True)
    assert a.quantized and a.quantized_fraction == 1.0


def test_fake_quant_on_a_float_constant() -> None:
    """QuantizeLinear -> DequantizeLinear left unfolded: zeros are what rounds to the zero point."""
    w = np.array([[0.01, 0.3], [0.2, 0.0], [-0.04, 0.06], [1.0, -0.5]], np.float32)  # (K, N)
    nodes = [
        helper.make_node("QuantizeLinear", ["w", "scale", "zp"], ["wq"]),
        helper.make_node("DequantizeLinear", ["wq", "scale", "zp"], ["wdq"]),
        helper.make_node("MatMul", ["x", "wdq"], ["y"], name="fc"),
    ]
    model = build(
        nodes,
        [("x", F, ["batch", 4])],
        [("y", F, ["batch", 2])],
        {"w": w, "scale": np.array(0.1, np.float32), "zp": np.array(0, np.int8)},
    )
    layer = only(analyze_model(model))
    # w / 0.1 rounds to [[0, 3], [2, 0], [0, 1], [10, -5]]: three zeros (0.06 -> 1 is not one).
    assert (layer.weight, layer.zeros, layer.dtype, layer.quantized) == ("w", 3, "int8", True)


def test_qlinear_conv_and_matmul() -> None:
    w = np.ones((2, 2, 2, 2), np.int8)
    w[0] = 0  # 8 zeros; input channels (2) pad to one block each -> 4 all-zero blocks
    w[1, 0, 0, 0] = 0
    b = np.array([[128, 0, 7], [128, 1, 9], [128, 200, 3], [128, 5, 5]], np.uint8)
    scalar = {
        "xs": np.array(0.1, np.float32),
        "xz": np.array(128, np.uint8),
        "ys": np.array(0.2, np.float32),
        "yz": np.array(128, np.uint8),
    }
    inits = {
        **scalar,
        "w": w,
        "ws": np.array([0.1, 0.2], np.float32),
        "wz": np.zeros(2, np.int8),
        "bias": np.array([1, 2], np.int32),
        "b": b,
        "bs": np.array(0.05, np.float32),
        "bz": np.array(128, np.uint8),
    }
    nodes = [
        helper.make_node(
            "QLinearConv",
            ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"],
            ["y"],
            name="qconv",
        ),
        helper.make_node(
            "QLinearMatMul", ["a", "xs", "xz", "b", "bs", "bz", "ys", "yz"], ["z"], name="qmm"
        ),
    ]
    model = build(
        nodes,
        [("x", U8, [1, 2, 3, 3]), ("a", U8, ["batch", 4])],
        [("y", U8, [1, 2, 2, 2]), ("z", U8, ["batch", 3])],
        inits,
    )
    a = analyze_model(model)
    conv, mm = a.layers
    assert (conv.params, conv.zeros, conv.blocks, conv.zero_blocks) == (16, 9, 8, 4)
    assert (conv.bias_params, conv.dtype, conv.per_channel) == (2, "int8", True)
    assert (conv.dense_flops, conv.sparse_flops) == (2 * 4 * 16, 2 * 4 * 7)
    # uint8 weight with zero point 128: the 0 at b[0, 1] is not a zero, column 0 is.
    assert (mm.params, mm.zeros, mm.blocks, mm.zero_blocks) == (12, 4, 3, 1)
    assert (mm.dtype, mm.bits, mm.quantized, mm.per_channel) == ("uint8", 8, True, False)
    assert (mm.dense_flops, mm.sparse_flops) == (24, 16)
    # int32 bias and int8/uint8 weights are parameters; scales and zero points are not.
    assert a.total_params == 16 + 2 + 12
    assert a.sparsity == pytest.approx(13 / 28)


def test_constant_node_weights_script_export_style() -> None:
    w = np.ones((3, 4), np.float32)
    w[0] = 0  # after the transpose: column 0 of (4, 3) is zero along K -> one zero block
    flat = np.arange(1, 13, dtype=np.float32)
    flat[:6] = 0
    nodes = [
        helper.make_node("Constant", [], ["w_t"], value=numpy_helper.from_array(w)),
        helper.make_node("Transpose", ["w_t"], ["w"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Constant", [], ["flat"], value=numpy_helper.from_array(flat)),
        helper.make_node("Constant", [], ["shape"], value_ints=[3, 4]),
        helper.make_node("Reshape", ["flat", "shape"], ["w2"]),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2"),
    ]
    model = build(nodes, [("x", F, ["batch", 4])], [("y", F, ["batch", 4])], {})
    a = analyze_model(model)
    fc1, fc2 = a.layers
    assert (fc1.weight, fc1.shape, fc1.zeros, fc1.blocks, fc1.zero_blocks) == (
        "w_t",
        (4, 3),
        4,
        3,
        1,
    )
    # (3, 4) reduced over K = 3: blocks are columns padded to 4; rows 0-1 are zero (6 zeros).
    assert (fc2.weight, fc2.shape, fc2.zeros, fc2.zero_blocks) == ("flat", (3, 4), 6, 0)
    assert (fc1.dense_flops, fc2.dense_flops) == (24, 24)
    assert a.total_params == 12 + 12  # the int64 shape constant is not a parameter


def test_nothing_prunable() -> None:
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    model = build(
        nodes, [("x", F, ["batch", 3])], [("y", F, ["batch", 3])], {"bias": np.ones(3, np.float32)}
    )
    a = analyze_model(model)
    assert a.layers == [] and a.unmeasured == []
    assert (a.total_params, a.prunable_params, a.sparsity, a.block4_sparsity) == (3, 0, 0.0, 0.0)
    assert (a.dense_flops, a.sparse_flops, a.quantized, a.quantized_fraction) == (0, 0, False, 0.0)
    assert json.loads(json.dumps(a.to_dict()))["layers"] == []


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    model = conv_model()
    convert_model_to_external_data(model, location="weights.bin", size_threshold=0)
    onnx.save(model, tmp_path / "model.onnx")
    a = analyze_model(tmp_path)  # a folder: its model.onnx
    assert only(a).zeros == 6
    expected = (tmp_path / "model.onnx").stat().st_size + (tmp_path / "weights.bin").stat().st_size
    assert a.file_size == expected
    # Without the data (what the hub does at commit), the layer is listed as unmeasured.
    bare = onnx.load(tmp_path / "model.onnx", load_external_data=False)
    assert analyze_model(bare).layers == [] and analyze_model(bare).unmeasured == ["conv"]


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 288)
    model = conv_model()
    convert_model_to_external_data(model, location="w.bin", size_threshold=0)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(AnalysisError, match=r"outside|absolute|walks out"):
        analyze_model(folder / "model.onnx")


# --- zoo analyze ------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    return app


def test_cli_table_and_json(cli: typer.Typer, tmp_path: Path) -> None:
    onnx.save(conv_model(), tmp_path / "model.onnx")
    runner = CliRunner()
    r = runner.invoke(cli, ["analyze", str(tmp_path / "model.onnx")])
    assert r.exit_code == 0, r.output
    for text in ("conv", "Conv", "2x4x3x3", "8.3%", "5.6%", "2.3k", "2.1k", "74"):
        assert text in r.stdout, text
    r = runner.invoke(cli, ["analyze", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data == json.loads(json.dumps(analyze_model(conv_model()).to_dict()))
    assert (data["dense_flops"], data["sparse_flops"], data["prunable_zeros"]) == (2304, 2112, 6)
    assert data["layers"][0]["block4_sparsity"] == pytest.approx(1 / 18)


def test_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("ZOO_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    r = runner.invoke(app, ["analyze", "zoo:cv/classification/resnet_v1-50/pytorch/x/y/base"])
    assert r.exit_code == 1 and "cannot reach" in r.stderr
    r = runner.invoke(app, ["analyze", str(tmp_path / "missing.onnx")])
    assert r.exit_code == 2 and "Invalid value for TARGET" in r.output
    cli = app
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    r = runner.invoke(cli, ["analyze", str(tmp_path / "bad.onnx")])
    assert r.exit_code == 1 and "not a readable ONNX model" in r.stderr
