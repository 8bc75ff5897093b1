"""Quick real builds of the demo catalog, checked against independent oracles.

The trained models are built with a few epochs; accuracy, sparsity and sample outputs are
recomputed here with scikit-learn, numpy and onnxruntime, never read back from the builder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper

from zoo.demo import BuiltModel, build_catalog, parse_recipe, synthetic_specs, trained_specs
from zoo.stubs import parse_stub

torch = pytest.importorskip("torch", reason="the trained demo models need torch (demo extra)")
pytest.importorskip("sklearn", reason="the trained demo models need scikit-learn (demo extra)")
ort = pytest.importorskip("onnxruntime", reason="sample outputs are computed by onnxruntime")

TINY = trained_specs("mlp", levels=(0.9,), epochs=3, prune_epochs=4, pruning_epochs=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltModel]:
    out = tmp_path_factory.mktemp("catalog")
    return {b.id: b for b in build_catalog(out, specs=TINY, threads=1, progress=None)}


def _front_matter(path: Path) -> dict[str, Any]:
    _, front, _ = path.read_text().split("---\n", 2)
    data = yaml.safe_load(front)
    assert isinstance(data, dict)
    return data


def _held_out() -> tuple[np.ndarray, np.ndarray]:
    # The split the catalog documents (75/25, stratified, seed 0), rebuilt here from sklearn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return (x_test / 16.0).astype(np.float32), y_test


def _run(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _gemm_weights(model: onnx.ModelProto) -> list[np.ndarray]:
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [inits[n.input[1]] for n in model.graph.node if n.op_type == "Gemm"]


def test_builds_every_folder_with_the_sparsezoo_layout(built: dict[str, BuiltModel]) -> None:
    assert list(built) == [s.id for s in TINY]
    for b in built.values():
        files = {p.relative_to(b.path).as_posix() for p in b.path.rglob("*") if p.is_file()}
        expected = {"model.onnx", "deployment/model.onnx", "model.md", "eval.yaml"}
        expected |= {"recipe/recipe_original.yaml", "sample-inputs/inp-0000.npz"}
        assert expected | {"sample-outputs/out-0003.npz"} <= files
        assert (b.path / "model.onnx").read_bytes() == (
            b.path / "deployment/model.onnx"
        ).read_bytes()
        onnx.checker.check_model(str(b.path / "model.onnx"))


def test_pruned_weights_measure_the_recipes_final_sparsity(built: dict[str, BuiltModel]) -> None:
    b = built["mlp-small-digits-pruned90"]
    (gmp,) = parse_recipe((b.path / "recipe/recipe_original.yaml").read_text()).pruning
    for w in _gemm_weights(onnx.load(str(b.path / "model.onnx"))):  # every layer is listed
        assert np.count_nonzero(w == 0) / w.size == pytest.approx(gmp.final_sparsity, abs=1e-3)
    assert b.sparsity == pytest.approx(0.9, abs=1e-3)
    # Zeros survived export one for one: the PyTorch weights have the same zeros.
    state = torch.load(io.BytesIO((b.path / "training/model.pt").read_bytes()), weights_only=True)
    torch_zeros = sum(int((v == 0).sum()) for k, v in state.items() if k.endswith("weight"))
    onnx_zeros = sum(
        int(np.count_nonzero(w == 0)) for w in _gemm_weights(onnx.load(str(b.path / "model.onnx")))
    )
    assert torch_zeros == onnx_zeros
    assert built["mlp-small-digits-base"].sparsity < 0.01


def test_sample_outputs_match_onnxruntime(built: dict[str, BuiltModel]) -> None:
    for b in built.values():
        inputs = sorted((b.path / "sample-inputs").glob("*.npz"))
        outputs = sorted((b.path / "sample-outputs").glob("*.npz"))
        assert len(inputs) == len(outputs) == 4
        for i, o in zip(inputs, outputs, strict=True):
            with np.load(i, allow_pickle=False) as feeds, np.load(o, allow_pickle=False) as want:
                got = _run(b.path / "model.onnx", {k: feeds[k] for k in feeds.files})
                assert sorted(want.files) == sorted(got) == ["logits"]
                np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)


def test_accuracy_in_eval_yaml_is_measured(built: dict[str, BuiltModel]) -> None:
    x_test, y_test = _held_out()
    for b in built.values():
        (result,) = yaml.safe_load((b.path / "eval.yaml").read_text())["evals"]
        assert (result["dataset"], result["split"], result["metric"]) == (
            "digits",
            "held_out",
            "top1_accuracy",
        )
        logits = _run(b.path / "model.onnx", {"input": x_test})["logits"]
        assert result["value"] == pytest.approx(
            float(np.mean(logits.argmax(1) == y_test)), abs=1e-6
        )
        assert result["value"] > 0.5  # even 3 epochs learn digits far above chance
        assert b.eval_results == [result]


def test_stubs_parse_and_cards_tell_the_truth(built: dict[str, BuiltModel]) -> None:
    for b in built.values():
        stub = parse_stub(b.stub)
        assert b.name == b.id and len(b.name) <= 100
        card = _front_matter(b.path / "model.md")
        for key in ("domain", "task", "architecture", "sub_architecture", "framework", "repo"):
            assert card[key] == getattr(stub, key)
        assert card["sparse_tag"] == stub.sparse_tag and card["license"] == "apache-2.0"
        assert card["dataset"] == "digits" and card["top1_accuracy"] == b.eval_results[0]["value"]
    assert built["mlp-small-digits-pruned90"].base_model == built["mlp-small-digits-base"].stub
    quant = built["mlp-small-digits-pruned90_quant"]
    assert quant.quantized and quant.stub.endswith("/pruned90_quant-none")
    assert quant.base_model == built["mlp-small-digits-pruned90"].stub
    assert any(
        n.op_type == "DequantizeLinear"
        for n in onnx.load(str(quant.path / "model.onnx")).graph.node
    )


def test_second_build_is_cached_and_half_built_folders_are_rebuilt(
    built: dict[str, BuiltModel],
) -> None:
    out = next(iter(built.values())).path.parent
    before = (out / "mlp-small-digits-pruned90" / "model.onnx").stat().st_mtime_ns
    again = build_catalog(out, specs=TINY, threads=1, progress=None)
    assert all(b.cached for b in again)
    assert [b.stub for b in again] == [b.stub for b in built.values()]
    assert (out / "mlp-small-digits-pruned90" / "model.onnx").stat().st_mtime_ns == before
    (out / "mlp-small-digits-pruned90_quant" / ".complete").unlink()  # as if interrupted
    lines: list[str] = []
    redo = build_catalog(out, specs=TINY, threads=1, progress=lines.append)
    assert [b.cached for b in redo] == [True, True, False]
    assert "mlp-small-digits-pruned90_quant: built in" in lines[2]
    assert not list(out.glob(".*tmp*"))  # no temporary folder left behind


def test_recipe_with_unknown_layer_names_it(tmp_path: Path) -> None:
    from zoo.demo import RecipeError
    from zoo.demo._train import make_net, run_recipe

    text = (
        "modifiers:\n  - !GMPruningModifier {init_sparsity: 0.5, final_sparsity: 0.5, "
        "start_epoch: 0, end_epoch: 0, update_frequency: 1, params: [layers.9.weight]}"
    )
    x, y = np.zeros((4, 64), np.float32), np.zeros(4, np.int64)
    with pytest.raises(RecipeError, match=r"'layers.9.weight' matches no prunable weight"):
        run_recipe(make_net("mlp", 0), parse_recipe(text), x, y, seed=0)


def test_training_loop_follows_the_gmp_schedule() -> None:
    from zoo.demo._train import make_net, run_recipe

    text = (
        "modifiers:\n  - !GMPruningModifier {init_sparsity: 0.1, final_sparsity: 0.8, "
        "start_epoch: 1, end_epoch: 3, update_frequency: 1, params: __ALL_PRUNABLE__}"
    )
    torch.set_num_threads(1)
    net = make_net("mlp", 0)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 64), dtype=np.float32), rng.integers(0, 10, 64)
    log = run_recipe(net, parse_recipe(text), x, y, seed=0)
    # Epoch 1: init 0.1; epoch 2: 0.8 + (0.1 - 0.8) * 0.5^3 = 0.7125; epoch 3 (end): 0.8.
    assert log.updates == [(1.0, 0.1), (2.0, pytest.approx(0.7125)), (3.0, 0.8)]
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            zeros = int((module.weight == 0).sum())
            assert zeros == round(module.weight.numel() * 0.8)


@pytest.mark.slow
def test_full_size_synthetic_models_build(tmp_path: Path) -> None:
    specs = synthetic_specs("mobilenet_v2", levels=(0.9,), quant_level=0.9)
    got = build_catalog(tmp_path, specs=specs, threads=1, progress=None)
    assert [b.stub.rsplit("/", 1)[1] for b in got] == [
        "base-none",
        "pruned90-none",
        "pruned90_quant-none",
    ]
    for b in got:
        assert _front_matter(b.path / "model.md")["synthetic_weights"] is True
        assert not (b.path / "eval.yaml").exists()  # no accuracy is claimed
        with np.load(b.path / "sample-inputs/inp-0000.npz") as feeds:
            assert feeds["input"].shape == (1, 3, 224, 224)
    conv_zeros = [
        np.count_nonzero(numpy_helper.to_array(t) == 0) / numpy_helper.to_array(t).size
        for t in onnx.load(str(got[1].path / "model.onnx")).graph.initializer
        if t.name.startswith("w_")
    ]
    assert len(conv_zeros) == 52 and min(conv_zeros) == pytest.approx(0.9, abs=0.01)
