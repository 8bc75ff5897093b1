"""Error messages: what exists, which node failed, what was fed."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from zoo.runtime import (
    InferenceSession,
    InvalidModel,
    NodeExecutionError,
    UnsafeExternalData,
    UnsupportedOperator,
    ZooRuntimeError,
)


def _one_node(op: str, opset: int = 17, **attrs: object) -> bytes:
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"], name="the_node", **attrs)],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def test_error_tree() -> None:
    for cls in (InvalidModel, UnsafeExternalData, UnsupportedOperator, NodeExecutionError):
        assert issubclass(cls, ZooRuntimeError)
    assert issubclass(ZooRuntimeError, RuntimeError)
    assert issubclass(UnsafeExternalData, InvalidModel)


def test_unknown_operator_lists_what_exists() -> None:
    with pytest.raises(UnsupportedOperator) as info:
        InferenceSession(_one_node("FrobnicateTensor"))
    message = str(info.value)
    assert "FrobnicateTensor" in message
    for op in ("Conv", "MatMul", "Relu", "QLinearConv"):
        assert op in info.value.available
        assert op in message


def test_too_old_opset_names_the_versions_that_exist() -> None:
    with pytest.raises(UnsupportedOperator, match=r"opset 10, 11 but the model uses opset 9"):
        InferenceSession(_one_node("Resize", opset=9))


def test_node_failure_names_node_op_shapes_and_dtypes() -> None:
    sess = InferenceSession(_one_node("MatMul"))
    a, b = np.ones((2, 3), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(NodeExecutionError) as info:
        sess.run(None, {"a": a, "b": b})
    err = info.value
    assert (err.node_name, err.op_type) == ("the_node", "MatMul")
    assert err.input_shapes == [(2, 3), (4, 5)]
    assert err.input_dtypes == ["float32", "float32"]
    assert "'the_node' (MatMul)" in str(err) and "float32[2, 3]" in str(err)
    assert isinstance(err.__cause__, ValueError)


def test_missing_and_unknown_inputs_and_wrong_dtype() -> None:
    sess = InferenceSession(_one_node("Add"))
    x = np.ones(3, np.float32)
    with pytest.raises(InvalidModel, match="missing input"):
        sess.run(None, {"a": x})
    with pytest.raises(InvalidModel, match="unknown input 'c'"):
        sess.run(None, {"a": x, "b": x, "c": x})
    with pytest.raises(InvalidModel, match=r"tensor\(float\)"):
        sess.run(None, {"a": x, "b": x.astype(np.float64)})
    with pytest.raises(InvalidModel, match="unknown output"):
        sess.run(["nope"], {"a": x, "b": x})


def test_garbage_bytes_are_an_invalid_model() -> None:
    with pytest.raises(InvalidModel, match="not a valid ONNX model"):
        InferenceSession(b"\x00\xffnot a model")


def test_session_looks_like_onnxruntime() -> None:
    sess = InferenceSession(_one_node("Add"))
    (arg,) = sess.get_outputs()
    assert arg.name == "y" and arg.type == "tensor(float)"
    assert [i.name for i in sess.get_inputs()] == ["a", "b"]
    assert sess.get_providers() == ["CPUExecutionProvider"]


def test_onnxruntime_engine_without_onnxruntime_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from zoo.runtime import benchmark

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ZooRuntimeError, match="pip install onnxruntime"):
        benchmark(_one_node("Add"), engine="onnxruntime", seconds=0.01)


def test_runtime_imports_neither_httpx_nor_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, zoo; before = set(sys.modules); import zoo.runtime; "
        "new = set(sys.modules) - before; "
        "bad = sorted(m for m in new if m.split('.')[0] in ('httpx', 'app')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_onnxruntime_style_constructor_arguments_are_accepted() -> None:
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()  # intra_op_num_threads left at 0: keep the global default
    sess = InferenceSession(_one_node("Add"), opts, providers=["CPUExecutionProvider"])
    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(sess.run(None, {"a": x, "b": x})[0], 2 * x)
