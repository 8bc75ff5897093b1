"""User code for the sparsezoo 1.8.1 client, run by tests/e2e/test_sparsezoo_client.py in the
client's own virtualenv (never imported by the project). Reads a JSON spec from argv[1],
prints one JSON report on its last line.

It does what code written for SparseZoo does: ``Model(stub)``, ``model.onnx_model.path``,
``model.sample_inputs``, ``model.deployment.path``, ``search_models(...)``; and it runs the
downloaded model on its sample inputs with onnxruntime, as an application would.
"""

import hashlib
import json
import os
import sys

import numpy
import onnx
import onnxruntime
from sparsezoo import Model, search_models


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_on_samples(model):
    """Run the ONNX model on every sample input; True if the outputs match the samples'."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # shared machine
    session = onnxruntime.InferenceSession(
        model.onnx_model.path, options, providers=["CPUExecutionProvider"]
    )
    # Reading .path downloads and unpacks sample-inputs.tar.gz / sample-outputs.tar.gz.
    _ = model.sample_inputs.path
    outputs = model.sample_outputs["framework"]
    _ = outputs.path
    pairs = list(zip(model.sample_inputs, outputs, strict=True))
    ok = bool(pairs)
    for inputs, expected in pairs:
        got = session.run(None, dict(inputs))
        for value, want in zip(got, expected.values(), strict=True):
            ok = ok and bool(numpy.allclose(value, want, rtol=1e-4, atol=1e-5))
    return ok


def listing(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files
    )


def main():
    spec = json.loads(sys.argv[1])
    report = {}

    model = Model(spec["path_stub"])
    onnx_path = model.onnx_model.path
    onnx.checker.check_model(onnx.load(onnx_path))
    outputs_match = run_on_samples(model)
    report["path_stub"] = {
        "onnx_sha256": sha256(onnx_path),
        "sample_inputs": [sorted(dict(inputs)) for inputs in model.sample_inputs],
        "outputs_match": outputs_match,
        "deployment": sorted(os.listdir(model.deployment.path)),
        "deployment_onnx_sha256": sha256(os.path.join(model.deployment.path, "model.onnx")),
    }

    target = os.path.join(spec["download_dir"], "short")
    short = Model(spec["short_stub"], download_path=target)
    assert short.download()
    report["short_stub"] = {
        "onnx_sha256": sha256(short.onnx_model.path),
        "files": listing(target),
        "throughput": [r.model_dump() for r in short.validation_results["throughput"]],
        "validation": [r.model_dump() for r in short.validation_results["validation"]],
    }

    report["search"] = search_models(
        domain=spec["domain"], sub_domain=spec["sub_domain"], return_stubs=True
    )

    try:
        Model(spec["missing_stub"])
        report["missing"] = None
    except ValueError as e:
        report["missing"] = str(e)

    print(json.dumps(report))


if __name__ == "__main__":
    main()
