"""SparseML-style recipes: parse the YAML, validate every modifier, compute its schedules.

A recipe is YAML with a ``version`` and one or more lists whose key ends in ``modifiers``
(``modifiers:``, ``training_modifiers:``, ``pruning_modifiers:``), each item a tagged
mapping. Other top-level scalars are variables that ``eval(...)`` values may use::

    version: 1.1.0
    num_epochs: 20.0
    modifiers:
      - !EpochRangeModifier {start_epoch: 0.0, end_epoch: eval(num_epochs)}
      - !GMPruningModifier
        init_sparsity: 0.05
        final_sparsity: 0.9
        start_epoch: 1.0
        end_epoch: 11.0
        update_frequency: 1.0
        params: __ALL_PRUNABLE__
        leave_enabled: true

A markdown recipe (``recipe.md``) keeps the same YAML in its front matter. This module is
pure Python (no torch): the training loop in ``zoo.demo._train`` executes what it describes.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal

import yaml

__all__ = [
    "ALL_PRUNABLE",
    "EpochRangeModifier",
    "GMPruningModifier",
    "LearningRateFunctionModifier",
    "Modifier",
    "Recipe",
    "RecipeError",
    "SetLearningRateModifier",
    "parse_recipe",
]

ALL_PRUNABLE = "__ALL_PRUNABLE__"
_ALL_TOKENS = (ALL_PRUNABLE, "__ALL__")


class RecipeError(ValueError):
    """A recipe that is not valid YAML, names an unknown modifier or has a bad field."""


@dataclass(frozen=True)
class EpochRangeModifier:
    """Sets how long training runs: epochs ``start_epoch`` .. ``end_epoch``."""

    start_epoch: float
    end_epoch: float


@dataclass(frozen=True)
class SetLearningRateModifier:
    """From ``start_epoch`` on, the learning rate is ``learning_rate``."""

    learning_rate: float
    start_epoch: float = 0.0
    end_epoch: float = -1.0  # SparseML accepts it; a set rate holds until another modifier


@dataclass(frozen=True)
class LearningRateFunctionModifier:
    """Learning rate from ``init_lr`` to ``final_lr`` over the epoch range (linear or cosine)."""

    lr_func: Literal["linear", "cosine"]
    init_lr: float
    final_lr: float
    start_epoch: float
    end_epoch: float

    def lr_at(self, epoch: float) -> float:
        x = min(max((epoch - self.start_epoch) / (self.end_epoch - self.start_epoch), 0.0), 1.0)
        if self.lr_func == "cosine":
            x = (1.0 - math.cos(math.pi * x)) / 2.0
        return self.init_lr + (self.final_lr - self.init_lr) * x


# Progress x in [0, 1] -> fraction of the way from init to final sparsity (SparseML's names).
_INTERPOLATIONS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "cubic": lambda x: 1.0 - (1.0 - x) ** 3,
    "inverse_cubic": lambda x: x**3,
}


@dataclass(frozen=True)
class GMPruningModifier:
    """Gradual magnitude pruning of ``params`` from ``init_sparsity`` to ``final_sparsity``.

    Masks are recomputed at :meth:`update_epochs` only and applied after every optimizer step
    in between, so pruned weights stay zero; ``leave_enabled`` keeps them applied after
    ``end_epoch``. ``params`` is ``__ALL_PRUNABLE__`` or a list of names and ``re:`` patterns.
    """

    init_sparsity: float
    final_sparsity: float
    start_epoch: float
    end_epoch: float
    update_frequency: float
    params: tuple[str, ...]
    leave_enabled: bool = True
    inter_func: str = "cubic"
    mask_type: str = "unstructured"

    def sparsity_at(self, epoch: float) -> float:
        """The schedule's value at ``epoch`` (cubic: final + (init-final)(1-progress)^3)."""
        if epoch < self.start_epoch:
            return 0.0
        if epoch >= self.end_epoch:
            return self.final_sparsity
        x = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        f = _INTERPOLATIONS[self.inter_func](x)
        return self.init_sparsity + (self.final_sparsity - self.init_sparsity) * f

    def update_epochs(self) -> list[float]:
        """Epochs at which masks are recomputed: start, start + k * update_frequency, end."""
        if self.end_epoch <= self.start_epoch:
            return [self.start_epoch]  # one-shot
        out: list[float] = []
        k = 0
        while (t := self.start_epoch + k * self.update_frequency) < self.end_epoch - 1e-9:
            out.append(t)
            k += 1
        return [*out, self.end_epoch]

    def applied_sparsity(self, epoch: float) -> float:
        """The sparsity in force at ``epoch``: the schedule at the last update at or before it."""
        done = [t for t in self.update_epochs() if t <= epoch + 1e-9]
        return self.sparsity_at(done[-1]) if done else 0.0

    @property
    def all_prunable(self) -> bool:
        return any(p in _ALL_TOKENS for p in self.params)

    def selects(self, name: str) -> bool:
        """True if the parameter called ``name`` is one this modifier prunes."""
        for p in self.params:
            if p in _ALL_TOKENS or p == name:
                return True
            if p.startswith("re:") and re.fullmatch(p[3:], name):
                return True
        return False


Modifier = (
    EpochRangeModifier | SetLearningRateModifier | LearningRateFunctionModifier | GMPruningModifier
)
_MODIFIERS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        EpochRangeModifier,
        SetLearningRateModifier,
        LearningRateFunctionModifier,
        GMPruningModifier,
    )
}


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``text`` is the exact YAML it came from (stored with the model)."""

    text: str
    version: str | None
    modifiers: tuple[Modifier, ...]

    @property
    def num_epochs(self) -> float:
        """Training length: the largest end epoch of any modifier (SparseML's rule)."""
        ends = [getattr(m, "end_epoch", 0.0) for m in self.modifiers]
        starts = [getattr(m, "start_epoch", 0.0) for m in self.modifiers]
        return max([0.0, *ends, *starts])

    @property
    def pruning(self) -> list[GMPruningModifier]:
        return [m for m in self.modifiers if isinstance(m, GMPruningModifier)]

    def lr_at(self, epoch: float, default: float) -> float:
        """Learning rate at ``epoch``: the last LR modifier that has started, else ``default``."""
        lr = default
        active = [
            m
            for m in self.modifiers
            if isinstance(m, SetLearningRateModifier | LearningRateFunctionModifier)
            and m.start_epoch <= epoch
        ]
        for m in sorted(active, key=lambda m: m.start_epoch):
            lr = m.learning_rate if isinstance(m, SetLearningRateModifier) else m.lr_at(epoch)
        return lr


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tagged:
    tag: str
    value: Any
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns any ``!Name`` tag into a :class:`_Tagged` (checked afterwards)."""


def _construct_tagged(loader: _Loader, suffix: str, node: yaml.Node) -> _Tagged:
    value: Any
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.ScalarNode) and node.value == "":
        value = {}  # `- !GMPruningModifier` with nothing after it
    else:
        value = node
    return _Tagged(suffix, value, node.start_mark.line + 1)


_Loader.add_multi_constructor("!", _construct_tagged)

_BINOPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _eval_expr(expr: str, variables: Mapping[str, Any], where: str) -> float:
    """Arithmetic over numbers and recipe variables only: never Python's eval on a file."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and isinstance(variables.get(node.id), int | float):
            return float(variables[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise RecipeError(
            f"{where}: cannot evaluate {ast.unparse(node)!r} in eval({expr}); use numbers, "
            f"+ - * / ** and the recipe's numeric variables ({', '.join(sorted(variables))})"
        )

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise RecipeError(f"{where}: eval({expr}) is not an arithmetic expression") from e
    return ev(tree.body)


def _resolve(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        m = re.fullmatch(r"\s*eval\((.*)\)\s*", value, re.S)
        if m:
            return _eval_expr(m.group(1), variables, where)
    return value


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecipeError(f"{where} must be a number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise RecipeError(f"{where} must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _build(index: int, item: _Tagged, variables: Mapping[str, Any]) -> Modifier:
    cls = _MODIFIERS.get(item.tag)
    label = f"modifier #{index + 1} (!{item.tag}, line {item.line})"
    if cls is None:
        raise RecipeError(
            f"{label}: unknown modifier; supported: {', '.join('!' + n for n in _MODIFIERS)}"
        )
    if not isinstance(item.value, dict):
        raise RecipeError(f"{label}: expected a mapping of fields, e.g. {{start_epoch: 0.0}}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(item.value) - set(known))
    if unknown:
        raise RecipeError(f"{label}: unknown field {unknown[0]!r}; known: {', '.join(known)}")
    missing = [
        n
        for n, f in known.items()
        if n not in item.value and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise RecipeError(f"{label}: missing required field {missing[0]!r}")
    kwargs: dict[str, Any] = {}
    for name, raw in item.value.items():
        where = f"{label}: field {name!r}"
        value = _resolve(raw, variables, where)
        if name == "params":
            kwargs[name] = _params(value, where)
        elif name in ("init_sparsity", "final_sparsity"):
            kwargs[name] = _number(value, where, 0.0, 0.999)
        elif name == "update_frequency":
            kwargs[name] = _number(value, where)
        elif name in ("lr_func", "inter_func", "mask_type"):
            kwargs[name] = _choice(name, value, where)
        elif name == "leave_enabled":
            if not isinstance(value, bool):
                raise RecipeError(f"{where} must be true or false, got {value!r}")
            kwargs[name] = value
        else:
            kwargs[name] = _number(value, where)
    modifier: Modifier = cls(**kwargs)
    _check_ranges(modifier, label)
    return modifier


def _params(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"{where} must be {ALL_PRUNABLE} or a non-empty list of names")
    for v in value:
        if v.startswith("re:"):
            try:
                re.compile(v[3:])
            except re.error as e:
                raise RecipeError(f"{where}: bad pattern {v!r}: {e}") from e
    return tuple(value)


_CHOICES = {
    "lr_func": ("linear", "cosine"),
    "inter_func": tuple(_INTERPOLATIONS),
    "mask_type": ("unstructured",),
}


def _choice(name: str, value: Any, where: str) -> str:
    if value not in _CHOICES[name]:
        raise RecipeError(f"{where} must be one of {', '.join(_CHOICES[name])}, got {value!r}")
    return str(value)


def _check_ranges(m: Modifier, label: str) -> None:
    end = getattr(m, "end_epoch", None)
    start = getattr(m, "start_epoch", 0.0)
    if end is not None and end != -1.0 and end < start:
        raise RecipeError(f"{label}: field 'end_epoch' ({end}) is before start_epoch ({start})")
    if isinstance(m, LearningRateFunctionModifier) and m.end_epoch <= m.start_epoch:
        raise RecipeError(f"{label}: field 'end_epoch' must be after start_epoch")
    gradual = isinstance(m, GMPruningModifier) and m.end_epoch > m.start_epoch
    if gradual and getattr(m, "update_frequency", 0.0) <= 0:
        raise RecipeError(f"{label}: field 'update_frequency' must be > 0 for a gradual run")


def parse_recipe(text: str) -> Recipe:
    """Parse and validate a recipe (YAML, or markdown with YAML front matter).

    >>> r = parse_recipe("modifiers:\\n  - !EpochRangeModifier {start_epoch: 0, end_epoch: 5}")
    >>> r.num_epochs
    5.0
    """
    body = text
    if text.lstrip().startswith("---"):
        parts = text.lstrip().split("---", 2)
        body = parts[1] if len(parts) == 3 else body
    try:
        data = yaml.load(body, Loader=_Loader)
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise RecipeError("recipe must be a YAML mapping with a 'modifiers:' list")
    variables = {
        k: v for k, v in data.items() if not k.endswith("modifiers") and not isinstance(v, _Tagged)
    }
    groups = [k for k in data if isinstance(k, str) and k.endswith("modifiers")]
    if not groups:
        raise RecipeError("recipe has no 'modifiers:' list (SparseML: modifiers: [ !Name {...} ])")
    items: list[_Tagged] = []
    for key in groups:
        group = data[key] or []
        if not isinstance(group, list):
            raise RecipeError(f"'{key}' must be a list of modifiers, got {type(group).__name__}")
        for item in group:
            if not isinstance(item, _Tagged):
                raise RecipeError(
                    f"'{key}' item #{len(items) + 1} is not a tagged modifier; "
                    "write it as '- !GMPruningModifier' followed by its fields"
                )
            items.append(item)
    version = data.get("version")
    modifiers = tuple(_build(i, item, variables) for i, item in enumerate(items))
    return Recipe(text, None if version is None else str(version), modifiers)
