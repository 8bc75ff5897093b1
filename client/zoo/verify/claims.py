"""Sparsity claims a model makes about itself: its SparseZoo tag and its card's front matter.

Shared by the hub (which refuses a commit whose claim the weights contradict) and
``zoo verify`` (which reports the same comparison), so both read a claim the same way.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SPARSITY_TOLERANCE", "card_front_matter", "card_sparsity", "tag_sparsity"]

# A claim may be this far (as a fraction) from the measured sparsity: tags are rounded.
SPARSITY_TOLERANCE = 0.02
# SparseZoo tags: "pruned90-none", "pruned95_quant-none", "12layer_pruned80_quant-none-vnni",
# "14layer_pruned50.4block_quantized" (".4block" is the structure, not a decimal).
_TAG_SPARSITY = re.compile(r"(?:^|[_-])pruned(\d{1,3})(?=$|[_.-])")


def tag_sparsity(sparse_tag: str | None) -> float | None:
    """The sparsity a SparseZoo tag claims; a tag without a number claims nothing.

    >>> tag_sparsity("pruned95_quant-none")
    0.95
    >>> tag_sparsity("base-none") is None, tag_sparsity("pruned_quant") is None
    (True, True)
    """
    match = _TAG_SPARSITY.search(sparse_tag or "")
    if match is None or int(match.group(1)) > 100:
        return None
    return int(match.group(1)) / 100


def card_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a model card (``model.md``); {} without one or if unreadable."""
    import yaml

    stripped = text.lstrip()
    if not stripped.startswith("---"):
        return {}
    parts = stripped.split("---", 2)
    if len(parts) < 3:
        return {}
    try:
        data = yaml.safe_load(parts[1])
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def card_sparsity(front_matter: dict[str, Any]) -> float | None:
    """The ``sparsity`` a card states: a fraction in [0, 1] or a percentage ("90%", 90).

    >>> card_sparsity({"sparsity": 0.9}), card_sparsity({"sparsity": "85%"})
    (0.9, 0.85)
    >>> card_sparsity({}) is None
    True
    """
    raw = front_matter.get("sparsity")
    percent = isinstance(raw, str) and raw.strip().endswith("%")
    text = raw.strip().removesuffix("%") if isinstance(raw, str) else raw
    if isinstance(text, bool) or text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not 0.0 <= value <= 100.0:  # also NaN
        return None
    return value / 100 if percent or value > 1.0 else value
