"""ONNX backend node tests (models, inputs and expected outputs from the onnx package).

Every case whose operators the runtime implements runs; the others are skipped with a
grouped reason. A summary line ("onnx node tests: N passed, M skipped") is printed at the end
of the session by ``conftest.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

from runtime._node_cases import NodeCase, node_cases
from zoo.runtime import InferenceSession


def _array(value: Any) -> np.ndarray[Any, Any]:
    # Some cases store data as TensorProto (e.g. to carry float16 bits exactly).
    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)


@pytest.mark.parametrize("nc", node_cases(), ids=lambda nc: nc.name)
def test_node(nc: NodeCase) -> None:
    if nc.skip:
        pytest.skip(nc.skip)
    case = nc.case
    sess = InferenceSession(case.model)
    names = [i.name for i in sess.get_inputs()]
    for inputs, expected in case.data_sets:
        got = sess.run(None, dict(zip(names, (_array(v) for v in inputs), strict=False)))
        assert len(got) == len(expected)
        for out, want_raw in zip(got, expected, strict=True):
            want = _array(want_raw)
            assert out.dtype == want.dtype
            assert out.shape == want.shape
            if want.dtype.kind == "O":
                assert out.tolist() == want.tolist()
            else:
                np.testing.assert_allclose(out, want, rtol=case.rtol, atol=case.atol)
