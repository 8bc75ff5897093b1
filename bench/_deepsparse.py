"""Time DeepSparse on one ONNX file: run by ``bench/runtime.py --deepsparse PYTHON``.

DeepSparse (Neural Magic, end of life, evaluation-only licence) is never a dependency of
this project: it lives in a virtualenv of its own (``python3.11 -m venv ds && ds/bin/pip
install deepsparse==1.8.0``), and the benchmark runs this file with that venv's python, so
this file imports nothing of ours.

    PYTHON bench/_deepsparse.py MODEL.onnx FEEDS.npz THREADS ROUNDS MIN_TIME OUT.npz

FEEDS.npz holds the inputs in the model's input order (arr_0, arr_1, ...). Prints one JSON
line: seconds per call of each round. OUT.npz gets the first output, for the caller to
check that DeepSparse computed the same model.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")  # no telemetry from a benchmark

import numpy as np
from deepsparse import compile_model  # type: ignore[import-not-found]


def main() -> None:
    model, feeds_path, threads, rounds, min_time, out_path = sys.argv[1:7]
    with np.load(feeds_path) as data:
        feeds = [data[f"arr_{i}"] for i in range(len(data.files))]
    engine = compile_model(model, batch_size=feeds[0].shape[0], num_cores=int(threads))
    np.savez(out_path, engine.run(feeds)[0])
    times = []
    for _ in range(int(rounds)):
        engine.run(feeds)  # the first call of a block is discarded, as for the others
        n, start = 0, time.perf_counter()
        while True:
            engine.run(feeds)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= float(min_time) and n >= 2:
                break
        times.append(elapsed / n)
    print(json.dumps({"seconds": times}))


if __name__ == "__main__":
    main()
