"""The demo catalog's model builders: trained small models and full-size synthetic ones.

``build_catalog(out_dir)`` writes one SparseZoo-layout folder per model and returns what
publishing needs (stub, names, lineage, eval results). torch and scikit-learn are imported
only when a trained model is built, so importing this package needs neither.
"""

from zoo.demo.catalog import (
    BuiltModel,
    ModelSpec,
    build_catalog,
    default_catalog,
    synthetic_specs,
    trained_specs,
)
from zoo.demo.recipe import Recipe, RecipeError, parse_recipe

__all__ = [
    "BuiltModel",
    "ModelSpec",
    "Recipe",
    "RecipeError",
    "build_catalog",
    "default_catalog",
    "parse_recipe",
    "synthetic_specs",
    "trained_specs",
]
