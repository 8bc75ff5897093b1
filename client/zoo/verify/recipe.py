"""The target sparsity a SparseML recipe prunes to.

Recipes are parsed by :func:`zoo.demo.recipe.parse_recipe` (the parser the demo trains with).
Real SparseZoo recipes also use modifiers that parser does not execute (quantization,
distillation, ``!MagnitudePruningModifier``, ...); such a recipe is still valid, so when the
strict parser only objects to an unknown modifier, a lenient read of the same YAML takes
``final_sparsity`` from any modifier that has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["RecipeTarget", "recipe_target"]


@dataclass(frozen=True)
class RecipeTarget:
    """What a recipe says: ``sparsity`` (None: it prunes nothing), how it was read, the modifiers
    that prune, and an error when it does not parse at all."""

    sparsity: float | None
    parser: str
    pruning_modifiers: int
    error: str | None = None


class _AnyTagLoader(yaml.SafeLoader):
    """Reads ``!AnyModifier {...}`` as ``{"__tag__": "AnyModifier", ...fields}``."""


def _tagged(loader: _AnyTagLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    fields: dict[Any, Any] = {}
    if isinstance(node, yaml.MappingNode):
        fields = loader.construct_mapping(node, deep=True)
    return {"__tag__": suffix, **{str(k): v for k, v in fields.items()}}


_AnyTagLoader.add_multi_constructor("!", _tagged)


def _number(value: Any, variables: dict[str, Any]) -> float | None:
    """A number, or ``eval(name)`` of a numeric top-level variable (all a target ever uses)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*eval\(\s*([A-Za-z_]\w*)\s*\)\s*", str(value))
    if m and isinstance(variables.get(m.group(1)), int | float):
        return float(variables[m.group(1)])
    return None


def _lenient(text: str) -> RecipeTarget:
    body = text
    if text.lstrip().startswith("---"):
        parts = text.lstrip().split("---", 2)
        body = parts[1] if len(parts) == 3 else body
    data = yaml.load(body, Loader=_AnyTagLoader)  # a SafeLoader subclass: no Python objects
    if not isinstance(data, dict):
        raise ValueError("recipe must be a YAML mapping with a 'modifiers:' list")
    variables = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    targets = []
    for key, group in data.items():
        if not str(key).endswith("modifiers") or not isinstance(group, list):
            continue
        for item in group:
            if isinstance(item, dict) and "final_sparsity" in item:
                value = _number(item["final_sparsity"], variables)
                if value is None or not 0.0 <= value <= 1.0:
                    raise ValueError(
                        f"!{item.get('__tag__')}: final_sparsity {item['final_sparsity']!r} "
                        "is not a fraction in [0, 1]"
                    )
                targets.append(value)
    return RecipeTarget(max(targets) if targets else None, "lenient SparseML YAML", len(targets))


def recipe_target(text: str) -> RecipeTarget:
    """Parse a recipe (YAML, or markdown with YAML front matter) and find its final sparsity;
    with several pruning modifiers, the highest (the one the tag speaks of).

    >>> recipe_target("modifiers:\\n  - !GMPruningModifier {init_sparsity: 0.05, "
    ...               "final_sparsity: 0.9, start_epoch: 0, end_epoch: 5, update_frequency: 1, "
    ...               "params: __ALL_PRUNABLE__}").sparsity
    0.9
    """
    from zoo.demo.recipe import RecipeError, parse_recipe

    try:
        recipe = parse_recipe(text)
    except RecipeError as e:
        if "unknown modifier" not in str(e):
            return RecipeTarget(None, "zoo.demo.recipe", 0, str(e))
        try:
            return _lenient(text)
        except (yaml.YAMLError, ValueError) as lenient_error:
            return RecipeTarget(None, "lenient SparseML YAML", 0, str(lenient_error))
    finals = [m.final_sparsity for m in recipe.pruning]
    return RecipeTarget(max(finals) if finals else None, "zoo.demo.recipe", len(finals))
