"""InferenceSession: the onnxruntime-shaped entry point of the runtime."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.runtime.errors import InvalidModel
from zoo.runtime.graph import ValueSpec, last_uses
from zoo.runtime.kernels import BufferPool, recycling, set_threads
from zoo.runtime.loader import ModelSource, load_model
from zoo.runtime.planner import Plan, Step, _inputs_of, build_plan, crop_wide, run_node_quiet
from zoo.runtime.registry import Array

__all__ = ["InferenceSession", "NodeArg", "NodeTime"]

NodeArg = ValueSpec  # same attributes as onnxruntime.NodeArg: .name, .shape, .type


@dataclass(frozen=True)
class NodeTime:
    """One planned step's profile: its node, op, kernel kind, total wall seconds, run count."""

    node: str
    op_type: str
    kernel: str | None
    seconds: float
    calls: int


class InferenceSession:
    """Run an ONNX model on CPU with sparse-aware kernels; a drop-in for onnxruntime's session.

    ``model`` is a path, serialized bytes or an ``onnx.ModelProto``. The model is loaded
    (external data only from its own folder) and planned once here; ``run`` executes the plan.
    ``sparse=False`` forces dense kernels; ``threads`` sets the kernels' thread count (a
    process-wide setting, as numba's thread pool is shared). ``profile=True`` times every
    step of every ``run`` (wall clock); read the totals with :meth:`node_times`.

    Example::

        sess = InferenceSession("model.onnx")
        (logits,) = sess.run(None, {sess.get_inputs()[0].name: batch})
    """

    def __init__(
        self,
        model: ModelSource,
        sess_options: Any = None,
        providers: Sequence[Any] | None = None,
        provider_options: Sequence[Any] | None = None,
        *,
        sparse: bool = True,
        threads: int | None = None,
        profile: bool = False,
    ) -> None:
        # sess_options/providers/provider_options are accepted so that onnxruntime code
        # switches by changing the class; only intra_op_num_threads is honoured.
        del providers, provider_options
        self.sparse = sparse
        ort_threads = getattr(sess_options, "intra_op_num_threads", None)
        if threads is None and isinstance(ort_threads, int) and ort_threads > 0:
            threads = ort_threads
        if threads is not None:
            set_threads(threads)
        self._plan = build_plan(load_model(model), sparse=sparse)
        self._schedules: dict[tuple[str, ...], list[tuple[Step, tuple[str, ...]]]] = {}
        # Released intermediates are reused for later outputs of the same shape (see
        # kernels/_buffers.py: fresh arrays of tens of MB are page-faulted on every call).
        self._buffers = BufferPool()
        self._profile = profile
        self._times: dict[int, list[float]] = {}  # id(step) -> [seconds, calls]

    @property
    def plan(self) -> Plan:
        """The execution plan (steps, constants, fusions, folded nodes) for introspection."""
        return self._plan

    def get_inputs(self) -> list[NodeArg]:
        """The inputs to feed: name, shape (ints, dim names or None), type (``tensor(float)``)."""
        return list(self._plan.inputs)

    def get_providers(self) -> list[str]:
        """onnxruntime compatibility: this runtime is a CPU provider."""
        return ["CPUExecutionProvider"]

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs, in order."""
        return list(self._plan.outputs)

    def run(
        self,
        output_names: Sequence[str] | None,
        feeds: Mapping[str, Any],
        run_options: Any = None,
        *,
        on_step: Callable[[int, Mapping[str, Any]], None] | None = None,
    ) -> list[Array]:
        """Compute ``output_names`` (None = all outputs) from ``feeds`` (input name -> array).

        ``on_step(i, live_values)`` is called after each step (for tests and profiling); a
        conv's output may be there uncropped, as a ``kernels.Wide`` (``np.asarray`` crops
        it), valid during this run only.
        """
        del run_options  # accepted for signature compatibility with onnxruntime
        plan = self._plan
        names = [o.name for o in plan.outputs] if output_names is None else list(output_names)
        values: dict[str, Any] = dict(plan.constants)
        values.update(self._check_feeds(feeds))
        known = {o.name for o in plan.outputs}
        for name in names:
            if name not in known:
                raise InvalidModel(
                    f"unknown output {name!r}; the model's outputs are {sorted(known)}"
                )
        pool = self._buffers
        # inf/nan propagate without numpy warnings (IEEE semantics, as in every ONNX runtime)
        with recycling(pool), np.errstate(all="ignore"):
            for i, (step, release) in enumerate(self._schedule(tuple(names))):
                start = time.perf_counter() if self._profile else 0.0
                args = _inputs_of(step.node, values)
                if step.crop:
                    crop_wide(step, args, values)
                results = run_node_quiet(step.op, args)
                del args
                if self._profile:
                    slot = self._times.setdefault(id(step), [0.0, 0])
                    slot[0] += time.perf_counter() - start
                    slot[1] += 1
                for name, value in zip(step.node.outputs, results, strict=False):
                    if name:
                        values[name] = value
                del results
                for name in release:  # last reader has run: let the array go
                    if name in feeds or name in plan.constants:
                        values.pop(name, None)
                    else:  # an intermediate: its buffer may serve a later output
                        pool.give(values.pop(name, None))
                if on_step is not None:
                    on_step(i, values)
        return [np.asarray(values[n]) for n in names]

    def node_times(self) -> list[NodeTime]:
        """Per-step wall time summed over the runs so far (``profile=True``), slowest first.

        Example::

            sess = InferenceSession("model.onnx", profile=True)
            sess.run(None, feeds)
            for t in sess.node_times()[:10]:
                print(f"{t.seconds * 1e3:8.2f} ms  {t.op_type:12s} {t.kernel or ''} {t.node}")
        """
        if not self._profile:
            raise ValueError("node_times() needs InferenceSession(..., profile=True)")
        rows = []
        for step in self._plan.steps:
            seconds, calls = self._times.get(id(step), (0.0, 0))
            # a kernel that picks its path per call (sparse-csr-b1 / -batched) reports the
            # last call's; the op's kernel_kind was recorded at plan time
            kind = getattr(getattr(step.op, "kernel", None), "kind", None) or step.op.kernel_kind
            rows.append(NodeTime(step.node.name, step.node.op_type, kind, seconds, int(calls)))
        return sorted(rows, key=lambda r: -r.seconds)

    def _schedule(self, names: tuple[str, ...]) -> list[tuple[Step, tuple[str, ...]]]:
        """The steps needed for ``names`` with their release lists (cached per output set)."""
        cached = self._schedules.get(names)
        if cached is not None:
            return cached
        plan = self._plan
        if set(names) == {o.name for o in plan.outputs}:
            schedule = [(s, s.release) for s in plan.steps]
        else:
            # Only the steps that reach a requested output; lifetimes recomputed for them.
            needed, steps = set(names), []
            for step in reversed(plan.steps):
                if any(o in needed for o in step.node.outputs if o):
                    steps.append(step)
                    needed.update(n for n in step.node.inputs if n)
            steps.reverse()
            releases = last_uses([s.node for s in steps], set(names) | set(plan.constants))
            schedule = list(zip(steps, releases, strict=True))
        self._schedules[names] = schedule
        return schedule

    def _check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, Array]:
        expected = {spec.name: spec for spec in self._plan.inputs}
        checked: dict[str, Array] = {}
        for name, value in feeds.items():
            spec = expected.get(name)
            if spec is None and name in self._plan.initializers:
                raise InvalidModel(
                    f"{name!r} is an initializer of the model; this runtime plans initializers as "
                    "constants and does not accept them as feeds"
                )
            if spec is None:
                raise InvalidModel(
                    f"unknown input {name!r}; the model's inputs are {sorted(expected)}"
                )
            array = np.asarray(value)
            dtype = spec.dtype
            if (
                dtype is not None
                and array.dtype != dtype
                and not (dtype.kind == "O" and array.dtype.kind in "OUS")
            ):
                raise InvalidModel(
                    f"input {name!r} must be {spec.type}, got an array of {array.dtype}"
                )
            if spec.shape and len(spec.shape) != array.ndim:
                raise InvalidModel(
                    f"input {name!r} must have rank {len(spec.shape)} (shape {spec.shape}), "
                    f"got shape {list(array.shape)}"
                )
            checked[name] = array
        missing = [n for n in expected if n not in checked]
        if missing:
            raise InvalidModel(f"missing input(s) {missing}; feed every name in get_inputs()")
        return checked
