"""``zoo verify``: check that a model is what it claims to be.

One :class:`Check` per claim (file hashes, ONNX validity, reproduced sample outputs, sparsity
vs tag and card, recipe target vs weights, speed vs the stored benchmark), gathered in a
:class:`VerifyReport`. The output comparison (:func:`compare_outputs`) is the one the hub runs
after a commit to mark a version "outputs reproduced".

>>> import zoo
>>> report = zoo.Model("zoo:acme/resnet50-pruned90@2").verify()  # doctest: +SKIP
>>> report.ok  # doctest: +SKIP
True
"""

from zoo.verify.claims import SPARSITY_TOLERANCE, card_sparsity, tag_sparsity
from zoo.verify.outputs import OutputComparison, compare_folder, compare_outputs
from zoo.verify.report import Check, Status, VerifyReport
from zoo.verify.run import verify_model

__all__ = [
    "SPARSITY_TOLERANCE",
    "Check",
    "OutputComparison",
    "Status",
    "VerifyReport",
    "card_sparsity",
    "compare_folder",
    "compare_outputs",
    "tag_sparsity",
    "verify_model",
]
