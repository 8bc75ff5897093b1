"""Benchmark: zoo.runtime against onnxruntime (dense) on the same ONNX files, same process.

Models are built offline (``zoo.testing.models``): an MLP 1024-4096-4096-1000, a
ResNet-50-shaped CNN (224x224) and a BERT-base encoder (seq 128), each dense and
magnitude-pruned. Both engines get the same thread count; each measurement round runs a
block of onnxruntime calls then a block of zoo calls, each after a pause in which the other
engine's spinning threads go to sleep (``SETTLE``; the first call of a block is discarded);
the table reports median throughputs and the median of the per-round ratios - on a shared
machine, trust the ratio more than either throughput.

    python bench/runtime.py --quick                      # 90% sparse + dense, batch 1
    python bench/runtime.py --models mlp --sparsity 0,0.8,0.9,0.95 --batches 1,64
    python bench/runtime.py --kernels --batches 1,64     # per-layer kernel numbers
    python bench/runtime.py --models resnet50 --sparsity 0.9 --batches 1 --rounds 15 --min-time 0.1
    python bench/runtime.py --threads 1 --cpu-time ...   # steadiest on a shared machine
    python bench/runtime.py --deepsparse ds/bin/python ...  # add DeepSparse 1.8 lines

DeepSparse is never a dependency (evaluation-only licence): ``--deepsparse`` (or
ZOO_BENCH_DEEPSPARSE) names the python of a virtualenv where it is installed, and each row
then gets a line with DeepSparse's items/s on the same file and inputs (bench/_deepsparse.py,
in a subprocess, after the row: the ratio is against that row's onnxruntime median).

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from zoo.runtime import InferenceSession
from zoo.runtime.kernels import set_threads
from zoo.testing import models

MODELS = ("mlp", "resnet50", "bert")
Feeds = dict[str, np.ndarray]


@dataclass
class Case:
    """One model at one sparsity: its ONNX bytes and how to make inputs for a batch."""

    name: str
    sparsity: float
    onnx_bytes: bytes
    feeds: Callable[[int], Feeds]
    seq: int = 1  # items per batch row counted as one (sequences for BERT)


def _build(name: str, sparsity: float, quick: bool) -> Case:
    rng = np.random.default_rng(0)
    if name == "mlp":
        model = models.mlp(1024, (4096, 4096), 1000)

        def feeds(b: int) -> Feeds:
            return {"x": rng.standard_normal((b, 1024)).astype(np.float32)}

    elif name == "resnet50":
        model = models.resnet50(image=224)

        def feeds(b: int) -> Feeds:
            return {"input": rng.standard_normal((b, 3, 224, 224)).astype(np.float32)}

    elif name == "bert":
        model = models.bert_encoder(layers=4 if quick else 12, seq=128)

        def feeds(b: int) -> Feeds:
            ids = rng.integers(0, 30522, (b, 128), dtype=np.int64)
            return {"input_ids": ids, "attention_mask": np.ones((b, 128), np.int64)}

    else:
        raise SystemExit(f"unknown model {name!r}: choose from {', '.join(MODELS)}")
    if sparsity > 0:
        model = models.prune(model, sparsity)
    return Case(name, sparsity, model.SerializeToString(), feeds)


ORT_SPIN = [True]  # --ort-no-spin: onnxruntime's workers block instead of spinning


def _ort_session(data: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # not the "unused initializer" warnings of the built models
    if not ORT_SPIN[0]:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


CLOCK: list[Callable[[], float]] = [time.perf_counter]  # --cpu-time: time.process_time


def _block(run: Callable[[], Any], min_time: float) -> float:
    """Seconds per call over a block of at least ``min_time`` (first call discarded)."""
    run()
    clock = CLOCK[0]
    n, start = 0, clock()
    while True:
        run()
        n += 1
        elapsed = clock() - start
        if elapsed >= min_time and n >= 2:
            return elapsed / n


# Seconds before each block, for the other engine's spinning workers to go to sleep. Right
# after a block of onnxruntime calls its two intra-op workers still spin: zoo's next calls
# on the 90% ResNet-50 (2 threads, batch 1) took 28 and 18 ms, then 8.4 ms, against 8.8,
# 8.2, 8.2 ms with 0.1 s between the blocks (and the whole table then read 109.8 items/s
# where zoo alone runs 118-119). The first call of a block is discarded either way (its
# caches were the other engine's).
SETTLE = 0.1


def interleaved_rounds(
    runs: Sequence[Callable[[], Any]], rounds: int, min_time: float
) -> list[list[float]]:
    """Seconds per call of each ``runs[i]`` in each round of alternating blocks, each block
    after a pause of ``SETTLE`` seconds."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for i, run in enumerate(runs):
            time.sleep(SETTLE)
            times[i].append(_block(run, min_time))
    return times


def interleaved(runs: Sequence[Callable[[], Any]], rounds: int, min_time: float) -> list[float]:
    """Median seconds per call of each ``runs[i]``, measured in alternating blocks."""
    return [statistics.median(t) for t in interleaved_rounds(runs, rounds, min_time)]


def median_ratio(base: list[float], other: list[float]) -> float:
    """Median over rounds of base/other: each round's two blocks ran back to back, under
    the same machine load, so their ratio is steadier than a ratio of medians."""
    return statistics.median(b / o for b, o in zip(base, other, strict=True))


def bench_models(args: argparse.Namespace) -> list[tuple[Any, ...]]:
    """Rows (model, sparsity, batch, ort items/s, zoo items/s, ratio, max |diff|)."""
    rows = []
    for name in args.models:
        for sp in args.sparsity:
            case = _build(name, sp, args.quick)
            ref = _ort_session(case.onnx_bytes, args.threads)
            t0 = time.perf_counter()
            zoo = InferenceSession(case.onnx_bytes, sparse=True, threads=args.threads)
            plan_s = time.perf_counter() - t0
            for b in args.batches:
                feeds = case.feeds(b)
                want = ref.run(None, feeds)[0]
                got = zoo.run(None, feeds)[0]
                diff = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-30))
                ort_t, zoo_t = interleaved_rounds(
                    [
                        lambda f=feeds, s=ref: s.run(None, f),  # type: ignore[misc]
                        lambda f=feeds, s=zoo: s.run(None, f),  # type: ignore[misc]
                    ],
                    args.rounds,
                    args.min_time,
                )
                t_ort, t_zoo = statistics.median(ort_t), statistics.median(zoo_t)
                ratio = median_ratio(ort_t, zoo_t)
                load = os.getloadavg()[0]
                rows.append((name, sp, b, b / t_ort, b / t_zoo, ratio, diff, plan_s, load))
                _print_row(rows[-1])
                if args.deepsparse:
                    print(_deepsparse_line(args, case, ref, feeds, want, t_ort), flush=True)
    return rows


def _deepsparse_line(
    args: argparse.Namespace,
    case: Case,
    ref: ort.InferenceSession,
    feeds: Feeds,
    want: np.ndarray,
    t_ort: float,
) -> str:
    """DeepSparse on the same file and inputs, in its own virtualenv (bench/_deepsparse.py)."""
    worker = Path(__file__).with_name("_deepsparse.py")
    with tempfile.TemporaryDirectory(prefix="zoo-bench-ds-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "model.onnx").write_bytes(case.onnx_bytes)
        np.savez(tmp / "feeds.npz", *[feeds[i.name] for i in ref.get_inputs()])
        cmd = [args.deepsparse, str(worker), str(tmp / "model.onnx"), str(tmp / "feeds.npz")]
        cmd += [str(args.threads), str(args.rounds), str(args.min_time), str(tmp / "out.npz")]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{'':9s} deepsparse: not run ({e})"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"{'':9s} deepsparse: failed ({last[:120]})"
        seconds = statistics.median(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
        with np.load(tmp / "out.npz") as out:
            got = out["arr_0"]
    b = next(iter(feeds.values())).shape[0]
    diff = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-30))
    return (
        f"{'':9s} deepsparse {b / seconds:10.1f} items/s, {t_ort / seconds:5.2f}x onnxruntime"
        f" (rel diff {diff:.1e}; its own process, after the row)"
    )


def _print_row(r: tuple[Any, ...]) -> None:
    name, sp, b, ort_ips, zoo_ips, ratio, diff, plan_s, load = r
    print(
        f"{name:9s} {sp:8.2f} {b:5d} {ort_ips:12.1f} {zoo_ips:12.1f} {ratio:7.2f}x"
        f" {diff:10.1e} {plan_s:7.1f} {load:5.1f}",
        flush=True,
    )


# load: the 1-minute load average after the row. Above the thread count other processes
# compete for the cores: onnxruntime's spinning workers then lose far more than zoo's
# blocking ones (ResNet-50 at 2 threads: 25 -> 5 items/s at load 6), and the 2-thread
# ratio flatters zoo; ``--threads 1 --cpu-time`` or ``--ort-no-spin`` are steadier then.
HEADER = (
    f"{'model':9s} {'sparsity':>8s} {'batch':>5s} {'ORT items/s':>12s} {'zoo items/s':>12s}"
    f" {'ratio':>8s} {'rel diff':>10s} {'plan s':>7s} {'load':>5s}"
)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, run the chosen benchmarks, print one table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--models", default=",".join(MODELS), type=lambda s: s.split(",")
    )  # mlp,resnet50,bert
    p.add_argument(
        "--sparsity", default="0,0.8,0.9,0.95", type=lambda s: [float(v) for v in s.split(",")]
    )
    p.add_argument("--batches", default="1,64", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="alternating measurement blocks")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per block")
    p.add_argument(
        "--quick", action="store_true", help="90%% + dense, batch 1, short blocks, 4-layer BERT"
    )
    p.add_argument(
        "--kernels", action="store_true", help="per-layer kernel table (bench/_layers.py)"
    )
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process CPU clock (needs --threads 1): on a shared machine it\n"
        "counts only this process's work, where wall time also counts other processes'",
    )
    p.add_argument(
        "--ort-no-spin",
        action="store_true",
        help="onnxruntime's intra-op workers block instead of spinning between ops\n"
        "(session.intra_op.allow_spinning=0), as zoo's do: fairer on a loaded machine",
    )
    p.add_argument(
        "--deepsparse",
        default=os.environ.get("ZOO_BENCH_DEEPSPARSE"),
        metavar="PYTHON",
        help="python of a virtualenv with deepsparse installed: add its numbers per row",
    )
    args = p.parse_args(argv)
    ORT_SPIN[0] = not args.ort_no_spin
    if args.cpu_time:
        if args.threads != 1:
            raise SystemExit("--cpu-time needs --threads 1 (CPU time adds up the threads)")
        CLOCK[0] = time.process_time
    if args.quick:
        args.sparsity, args.batches, args.rounds, args.min_time = [0.0, 0.9], [1], 3, 0.3
    set_threads(args.threads)
    clock = "process CPU time" if args.cpu_time else "wall time"
    print(
        f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, threads {args.threads}, {clock}"
    )
    if args.kernels:
        from _layers import bench_layers  # bench/ is not a package: run as a script

        bench_layers(args, interleaved)
        return
    print(HEADER)
    bench_models(args)


if __name__ == "__main__":
    main()
