"""The recipe parser and schedules (pure Python), stubs and catalog wiring: no torch needed."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from zoo.demo import RecipeError, default_catalog, parse_recipe, trained_specs
from zoo.demo.catalog import _with_bases
from zoo.demo.folder import BuildError, StubParts, make_stub, sparse_tag
from zoo.demo.recipe import (
    EpochRangeModifier,
    GMPruningModifier,
    LearningRateFunctionModifier,
    SetLearningRateModifier,
)
from zoo.demo.recipes import dense_recipe, oneshot_recipe, pruning_recipe
from zoo.stubs import parse_stub

GMP = """
version: 1.1.0
modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: 12.0
  - !GMPruningModifier
    init_sparsity: 0.05
    final_sparsity: 0.9
    start_epoch: 0.0
    end_epoch: 10.0
    update_frequency: 1.0
    params: __ALL_PRUNABLE__
    leave_enabled: True
"""


def _gmp(text: str = GMP) -> GMPruningModifier:
    (m,) = parse_recipe(text).pruning
    return m


def test_sparseml_recipe_parses_into_typed_modifiers() -> None:
    r = parse_recipe(GMP)
    assert r.version == "1.1.0"
    assert r.text == GMP  # the exact text, to store with the model
    assert isinstance(r.modifiers[0], EpochRangeModifier)
    m = _gmp()
    assert (m.init_sparsity, m.final_sparsity, m.update_frequency) == (0.05, 0.9, 1.0)
    assert m.params == ("__ALL_PRUNABLE__",) and m.all_prunable and m.leave_enabled
    assert r.num_epochs == 12.0


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (-1.0, 0.0),  # before start_epoch nothing is pruned
        (0.0, 0.05),  # init_sparsity at start
        (5.0, 0.9 - 0.85 * 0.5**3),  # 0.79375: final + (init - final) * (1 - 0.5)^3
        (2.0, 0.9 - 0.85 * 0.8**3),  # 0.4648
        (10.0, 0.9),
        (11.5, 0.9),  # after end_epoch: final
    ],
)
def test_gmp_cubic_schedule_matches_hand_computed_values(epoch: float, expected: float) -> None:
    assert _gmp().sparsity_at(epoch) == pytest.approx(expected)


def test_masks_update_only_every_update_frequency_epochs() -> None:
    m = _gmp()
    assert m.update_epochs() == [float(t) for t in range(11)]
    # Between updates the sparsity in force is the one of the last update (masks fixed).
    assert m.applied_sparsity(2.99) == pytest.approx(0.9 - 0.85 * 0.8**3)
    assert m.applied_sparsity(3.0) == pytest.approx(0.9 - 0.85 * 0.7**3)
    odd = _gmp(GMP.replace("update_frequency: 1.0", "update_frequency: 4.0"))
    assert odd.update_epochs() == [0.0, 4.0, 8.0, 10.0]  # end_epoch always gets its update


def test_other_interpolations_and_one_shot() -> None:
    lin = _gmp(GMP.replace("leave_enabled: True", "inter_func: linear"))
    assert lin.sparsity_at(5.0) == pytest.approx(0.475)
    inv = _gmp(GMP.replace("leave_enabled: True", "inter_func: inverse_cubic"))
    assert inv.sparsity_at(5.0) == pytest.approx(0.05 + 0.85 * 0.125)
    (one,) = parse_recipe(oneshot_recipe(0.9)).pruning
    assert one.update_epochs() == [0.0] and one.applied_sparsity(0.0) == 0.9


def test_variables_eval_groups_and_learning_rate() -> None:
    r = parse_recipe(pruning_recipe(0.95, ["a.weight", "re:b\\..*"], epochs=20, pruning_epochs=12))
    (m,) = r.pruning
    assert (m.end_epoch, r.num_epochs) == (12.0, 20.0)  # eval(pruning_end_epoch), eval(...)
    assert m.selects("a.weight") and m.selects("b.3.weight") and not m.selects("c.weight")
    lr = next(x for x in r.modifiers if isinstance(x, LearningRateFunctionModifier))
    assert lr.lr_func == "cosine"
    assert r.lr_at(0.0, 1.0) == pytest.approx(0.01)
    assert r.lr_at(10.0, 1.0) == pytest.approx((0.01 + 0.0001) / 2)  # cosine midpoint
    assert r.lr_at(20.0, 1.0) == pytest.approx(0.0001)
    dense = parse_recipe(dense_recipe(30))
    assert dense.pruning == [] and dense.num_epochs == 30.0


def test_set_learning_rate_and_markdown_front_matter() -> None:
    r = parse_recipe(
        "---\nversion: 1.1.0\nmodifiers:\n"
        "  - !SetLearningRateModifier {start_epoch: 2.0, learning_rate: 0.5}\n---\n# notes\n"
    )
    assert isinstance(r.modifiers[0], SetLearningRateModifier)
    assert r.lr_at(1.0, 0.1) == 0.1 and r.lr_at(2.5, 0.1) == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modifiers: [", "not valid YAML"),
        ("version: 1.1.0", "no 'modifiers:' list"),
        ("modifiers:\n  - !MagicModifier {a: 1}", "modifier #1 (!MagicModifier, line 2): unknown"),
        (
            GMP.replace("final_sparsity: 0.9", "final_sparsity: ninety"),
            "modifier #2 (!GMPruningModifier, line 7): field 'final_sparsity' must be a number",
        ),
        (
            GMP.replace("final_sparsity: 0.9", "final_sparsity: 1.5"),
            "field 'final_sparsity' must be in [0.0, 0.999]",
        ),
        (GMP.replace("final_sparsity: 0.9", "final_sparsty: 0.9"), "unknown field 'final_sparsty'"),
        (GMP.replace("    end_epoch: 10.0\n", ""), "missing required field 'end_epoch'"),
        (GMP.replace("update_frequency: 1.0", "update_frequency: 0"), "'update_frequency' must be"),
        (GMP.replace("end_epoch: 10.0", "end_epoch: eval(n + 1)"), "cannot evaluate 'n'"),
        (GMP.replace("end_epoch: 10.0", "end_epoch: 'eval(__import__)'"), "cannot evaluate"),
        (GMP.replace("leave_enabled: True", "leave_enabled: maybe"), "'leave_enabled' must be"),
        (GMP.replace("params: __ALL_PRUNABLE__", "params: []"), "field 'params' must be"),
        (GMP.replace("__ALL_PRUNABLE__", "'re:('"), "bad pattern"),
        (GMP.replace("end_epoch: 10.0", "end_epoch: -2.0"), "is before start_epoch"),
        ("modifiers:\n  - start_epoch: 1", "is not a tagged modifier"),
    ],
)
def test_bad_recipes_name_the_modifier_and_field(text: str, message: str) -> None:
    with pytest.raises(RecipeError) as e:
        parse_recipe(text)
    assert message in str(e.value)


def test_import_needs_neither_torch_nor_sklearn() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sklearn'] = None\n"
        "import zoo.demo; zoo.demo.default_catalog(); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_catalog_ids_stubs_and_names_are_valid() -> None:
    specs = default_catalog()
    assert len({s.id for s in specs}) == len(specs) == 23
    from zoo.demo.synthetic import SYNTHETIC
    from zoo.demo.trained import ARCHS

    parts = [a.parts for a in ARCHS.values()] + [a.parts for a in SYNTHETIC.values()]
    for p in parts:
        for tag in ("base-none", "pruned80-none", "pruned95_quant-none"):
            text, name = make_stub(p, tag)
            stub = parse_stub(text)
            assert (stub.architecture, stub.sparse_tag, stub.repo) == (
                p.architecture,
                tag,
                "openzoo",
            )
            assert len(name) <= 100 and not name.endswith("-none")


def test_sparse_tag_comes_from_the_measurement() -> None:
    assert sparse_tag(0.0, None, False) == "base-none"
    assert sparse_tag(0.8977, 0.9, False) == "pruned90-none"
    assert sparse_tag(0.9476, 0.95, True) == "pruned95_quant-none"
    with pytest.raises(BuildError, match="more than 2%"):
        sparse_tag(0.85, 0.9, False)
    with pytest.raises(Exception, match="invalid"):
        make_stub(StubParts("cv", "classification", "Bad Arch", None, "onnx", "x"), "base-none")


def test_only_builds_bases_first() -> None:
    specs = trained_specs("mlp")
    got = [s.id for s in _with_bases(["mlp-small-digits-pruned90_quant"], specs)]
    assert got == [
        "mlp-small-digits-base",
        "mlp-small-digits-pruned90",
        "mlp-small-digits-pruned90_quant",
    ]
    with pytest.raises(KeyError, match="unknown demo model 'nope'"):
        _with_bases(["nope"], specs)


def test_lr_function_is_cosine_between_ends() -> None:
    m = LearningRateFunctionModifier("cosine", 1.0, 0.0, 0.0, 4.0)
    assert m.lr_at(1.0) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
