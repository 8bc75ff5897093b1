"""``zoo.Model`` from a stub (live hub) and from a local folder (no network)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest

import zoo
from support.client_helpers import MakeClient, Published, Recorder, model_folder
from support.hub import Hub


def test_model_from_a_stub(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, cache=tmp_path / "c")
    model = zoo.Model(published.path_stub + "?recipe=original", client=client)
    assert model.stub == published.stub and model.version == 1
    onnx.checker.check_model(str(model.onnx_model))
    expected = np.load(io.BytesIO((published.folder / "sample-inputs/inp-0000.npz").read_bytes()))
    np.testing.assert_array_equal(model.sample_inputs[0]["input"], expected["input"])
    assert set(model.sample_outputs[0]) == {"logits"}
    assert model.model_card.startswith("---")
    assert "original" in model.recipes and model.recipe == model.recipes["original"]
    assert (model.deployment / "model.onnx").is_file()
    assert model.sparsity is not None and 0.85 < model.sparsity <= 1
    assert model.benchmarks == [] and model.eval_results == []
    assert {f.path for f in model.files} >= {"model.onnx", "model.md"}
    snap = model.download()
    assert (snap / "training/weights.bin").is_file()


def test_model_from_a_local_folder_needs_no_network(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    (folder / "benchmarks.yaml").write_text("benchmarks:\n  - engine: zoo\n    throughput: 5\n")
    forbid = Recorder(forbid=True)
    client = zoo.ZooClient("http://127.0.0.1:9", transport=forbid, cache_dir=tmp_path / "c")
    model = zoo.Model(folder, client=client)
    assert model.stub is None and model.version is None
    assert model.onnx_model == folder / "model.onnx"
    assert model.sample_inputs[0]["input"].shape == (1, 64)
    assert model.recipes == {"original": folder / "recipe/recipe_original.yaml"}
    assert model.benchmarks == [{"engine": "zoo", "throughput": 5}]
    assert model.eval_results == []
    assert model.download() == folder
    assert forbid.seen == []


def test_model_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(zoo.LocalModelError, match="neither a stub"):
        zoo.Model(str(tmp_path / "nope"))
    with pytest.raises(zoo.InvalidStubError, match="segments"):
        zoo.Model("zoo:a/b/c")
