"""External data loads only from inside the model's folder (CVE-2024-27318/27319 class)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo.runtime import InferenceSession, InvalidModel, UnsafeExternalData
from zoo.runtime.loader import safe_external_path

WEIGHT = np.arange(64 * 32, dtype=np.float32).reshape(64, 32) / 1000


def _model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 32])],
        [numpy_helper.from_array(WEIGHT, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(folder: Path, location: str = "weights.bin") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(_model(), path, save_as_external_data=True, location=location, size_threshold=0)
    return path


def _point_at(path: Path, location: str) -> None:
    """Rewrite the model's external-data location (what an attacker would ship)."""
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    path.write_bytes(model.SerializeToString())


def _feeds() -> dict[str, np.ndarray]:
    return {"x": np.ones((2, 64), np.float32)}


def test_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    assert (tmp_path / "model" / "weights.bin").exists()
    (y,) = InferenceSession(path).run(None, _feeds())
    np.testing.assert_allclose(y, np.ones((2, 64), np.float32) @ WEIGHT, rtol=1e-6)


def test_external_data_in_a_subfolder_loads(tmp_path: Path) -> None:
    path = _save(tmp_path / "model", location="data/weights.bin")
    (y,) = InferenceSession(str(path)).run(None, _feeds())
    np.testing.assert_allclose(y, np.ones((2, 64), np.float32) @ WEIGHT, rtol=1e-6)


def test_dotdot_location_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    (tmp_path / "weights.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    _point_at(path, "../weights.bin")
    with pytest.raises(UnsafeExternalData, match=r"\.\./weights\.bin"):
        InferenceSession(path)


def test_dotdot_inside_a_subpath_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    _point_at(path, "data/../../weights.bin")
    with pytest.raises(UnsafeExternalData, match=r"data/\.\./\.\./weights\.bin"):
        InferenceSession(path)


def test_absolute_location_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    _point_at(path, str(outside))
    with pytest.raises(UnsafeExternalData, match="absolute"):
        InferenceSession(path)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    secret = tmp_path / "secret.bin"
    secret.write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    os.symlink(secret, tmp_path / "model" / "link.bin")
    _point_at(path, "link.bin")
    with pytest.raises(UnsafeExternalData, match=r"link\.bin"):
        InferenceSession(path)


def test_symlinked_directory_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "w.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    os.symlink(tmp_path / "outside", tmp_path / "model" / "sub")
    _point_at(path, "sub/w.bin")
    with pytest.raises(UnsafeExternalData, match="outside the folder"):
        InferenceSession(path)


@pytest.mark.parametrize("location", ["/etc/passwd", "C:\\Windows\\win.ini", "\\\\host\\share\\w"])
def test_safe_external_path_rejects_absolute_forms(tmp_path: Path, location: str) -> None:
    with pytest.raises(UnsafeExternalData):
        safe_external_path(tmp_path, location)


def test_reading_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "length":
            entry.value = str(10**9)
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InvalidModel, match="bytes"):
        InferenceSession(path)


def test_external_data_without_a_folder_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "model")
    data = onnx.load(path, load_external_data=False).SerializeToString()
    with pytest.raises(InvalidModel, match="file path"):
        InferenceSession(data)
