"""Build ONNX models offline, with the layer shapes and op patterns of real architectures.

Used by the runtime tests, the benchmarks and demos. Weights are random (seeded); sizes can be
reduced (fewer blocks, smaller images) while the op patterns stay those of the exports::

    from zoo.testing.models import resnet50, prune
    model = prune(resnet50(image=64), 0.9)   # 90 % unstructured magnitude pruning
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

__all__ = ["bert_encoder", "mlp", "mobilenet_v2", "prune", "quantize_qdq", "resnet50"]

Array = npt.NDArray[Any]


class GraphBuilder:
    """A tiny helper to add initializers and nodes with unique names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, prefix: str, value: Array | np.generic) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs)
        )
        return outs[0] if n_out == 1 else outs

    def weight(self, shape: tuple[int, ...], fan_in: int) -> Array:
        # He initialisation keeps activations O(1) through deep ReLU stacks.
        return (self.rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)

    def conv_bn(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        group: int = 1,
        act: str | None = "relu",
    ) -> str:
        """Conv (no bias) -> BatchNormalization -> optional Relu / Relu6 (Clip 0..6)."""
        w = self.const("w", self.weight((cout, cin // group, k, k), cin // group * k * k))
        pad = k // 2
        y = self.op(
            "Conv",
            [x, w],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=group,
        )
        r = self.rng
        bn = [
            self.const("bn_scale", r.uniform(0.5, 1.0, cout).astype(np.float32)),
            self.const("bn_bias", r.normal(0, 0.1, cout).astype(np.float32)),
            self.const("bn_mean", r.normal(0, 0.1, cout).astype(np.float32)),
            self.const("bn_var", r.uniform(0.8, 1.5, cout).astype(np.float32)),
        ]
        y = self.op("BatchNormalization", [y, *bn], epsilon=1e-5)
        if act == "relu":
            return str(self.op("Relu", [y]))
        if act == "relu6":
            lo, hi = self.const("min", np.float32(0)), self.const("max", np.float32(6))
            return str(self.op("Clip", [y, lo, hi]))
        return str(y)

    def dense(self, x: str, k: int, n: int) -> str:
        """MatMul with a (K, N) weight followed by a bias Add (the PyTorch Linear export)."""
        w = self.const("w", self.weight((k, n), k) * np.float32(0.5))
        b = self.const("b", self.rng.normal(0, 0.02, n).astype(np.float32))
        return str(self.op("Add", [self.op("MatMul", [x, w]), b]))

    def model(
        self,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        name: str,
        opset: int,
    ) -> ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, 9)  # loadable by older onnxruntime builds
        onnx.checker.check_model(model)
        return model


def _classifier(g: GraphBuilder, x: str, channels: int, classes: int) -> str:
    """GlobalAveragePool -> Flatten -> Gemm(transB=1), as torchvision exports end."""
    y = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    w = g.const("fc_w", g.weight((classes, channels), channels) * np.float32(0.5))
    b = g.const("fc_b", np.zeros(classes, np.float32))
    return str(g.op("Gemm", [y, w, b], transB=1))


def mlp(
    in_features: int = 784,
    hidden: Sequence[int] = (512, 256),
    classes: int = 10,
    *,
    opset: int = 17,
    seed: int = 0,
) -> ModelProto:
    """MatMul+Add+Relu layers; input ``x`` (batch, in_features), output ``logits``."""
    g = GraphBuilder(seed)
    x, k = "x", in_features
    for n in hidden:
        x, k = str(g.op("Relu", [g.dense(x, k, n)])), n
    out = g.dense(x, k, classes)
    g.nodes[-1].output[0] = "logits"
    del out
    return g.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        "mlp",
        opset,
    )


def resnet50(
    *,
    image: int = 224,
    blocks: Sequence[int] = (3, 4, 6, 3),
    width: int = 64,
    classes: int = 1000,
    opset: int = 17,
    seed: int = 0,
) -> ModelProto:
    """ResNet-50 v1 (bottleneck blocks, stride on the 3x3 conv); input ``input`` (N, 3, H, W)."""
    g = GraphBuilder(seed)
    x = g.conv_bn("input", 3, width, 7, stride=2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = width
    for stage, n in enumerate(blocks):
        mid = width * 2**stage
        cout = mid * 4
        for i in range(n):
            stride = 2 if i == 0 and stage > 0 else 1
            y = g.conv_bn(x, cin, mid, 1)
            y = g.conv_bn(y, mid, mid, 3, stride=stride)
            y = g.conv_bn(y, mid, cout, 1, act=None)
            short = g.conv_bn(x, cin, cout, 1, stride=stride, act=None) if i == 0 else x
            x = g.op("Relu", [g.op("Add", [y, short])])
            cin = cout
    logits = _classifier(g, x, cin, classes)
    g.nodes[-1].output[0] = "output"
    del logits
    return g.model(
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, image, image])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
        "resnet50",
        opset,
    )


_MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)  # (expansion t, channels c, repeats n, stride s)


def mobilenet_v2(
    *,
    image: int = 224,
    width_mult: float = 1.0,
    classes: int = 1000,
    opset: int = 17,
    seed: int = 0,
    max_repeats: int | None = None,
) -> ModelProto:
    """MobileNetV2: inverted residuals with depthwise 3x3 convs and Relu6 (Clip 0..6)."""
    g = GraphBuilder(seed)

    def ch(c: int) -> int:
        return max(8, int(c * width_mult + 4) // 8 * 8)

    cin = ch(32)
    x = g.conv_bn("input", 3, cin, 3, stride=2, act="relu6")
    for t, c, n, s in _MOBILENET_V2:
        cout = ch(c)
        for i in range(n if max_repeats is None else min(n, max_repeats)):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = g.conv_bn(x, cin, hidden, 1, act="relu6") if t != 1 else x
            y = g.conv_bn(y, hidden, hidden, 3, stride=stride, group=hidden, act="relu6")
            y = g.conv_bn(y, hidden, cout, 1, act=None)
            x = g.op("Add", [x, y]) if stride == 1 and cin == cout else y
            cin = cout
    last = ch(1280) if width_mult > 1.0 else 1280
    x = g.conv_bn(x, cin, last, 1, act="relu6")
    logits = _classifier(g, x, last, classes)
    g.nodes[-1].output[0] = "output"
    del logits
    return g.model(
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, image, image])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
        "mobilenet_v2",
        opset,
    )


def bert_encoder(
    *,
    layers: int = 12,
    seq: int = 128,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int | None = None,
    vocab: int = 30522,
    opset: int = 17,
    seed: int = 0,
    dynamic_shapes: bool = True,
) -> ModelProto:
    """BERT-base encoder as transformers exports it (opset 17: LayerNormalization, Erf-GELU).

    Inputs ``input_ids`` and ``attention_mask`` (batch, seq) int64; output
    ``last_hidden_state`` (batch, seq, hidden). With ``dynamic_shapes`` the head split/merge
    shapes are computed at run time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), as
    torch.onnx emits them; otherwise they are constants.
    """
    g = GraphBuilder(seed)
    ffn = intermediate or 4 * hidden
    d = hidden // heads
    r = g.rng

    def layer_norm(x: str) -> str:
        scale = g.const("ln_scale", r.uniform(0.8, 1.2, hidden).astype(np.float32))
        bias = g.const("ln_bias", r.normal(0, 0.02, hidden).astype(np.float32))
        return str(g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-12))

    word = g.const("word_emb", r.normal(0, 0.5, (vocab, hidden)).astype(np.float32))
    pos = g.const("pos_emb", r.normal(0, 0.5, (1, seq, hidden)).astype(np.float32))
    x = layer_norm(g.op("Add", [g.op("Gather", [word, "input_ids"], axis=0), pos]))
    # (B, S) int mask -> (B, 1, 1, S) additive bias: 0 where attended, -10000 where masked.
    mask = g.op(
        "Cast",
        [g.op("Unsqueeze", ["attention_mask", g.const("axes", np.array([1, 2]))])],
        to=TensorProto.FLOAT,
    )
    mask = g.op(
        "Mul",
        [g.op("Sub", [g.const("one", np.float32(1)), mask]), g.const("neg", np.float32(-10000))],
    )
    static_split = g.const("shape", np.array([0, 0, heads, d], dtype=np.int64))
    static_merge = g.const("shape", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("scale", np.float32(math.sqrt(d)))

    def batch_and_seq(t: str) -> list[str]:
        """[B], [S] of a (B, S, …) tensor as 1-D int64 tensors, computed from its shape."""
        shape = g.op("Shape", [t])
        dims = [g.op("Gather", [shape, g.const("i", np.int64(i))], axis=0) for i in (0, 1)]
        return [str(g.op("Unsqueeze", [dim, g.const("axes", np.array([0]))])) for dim in dims]

    def shape_of(t: str, tail: list[int], static: str) -> str:
        if not dynamic_shapes:
            return static
        tail_const = g.const("tail", np.array(tail, dtype=np.int64))
        return str(g.op("Concat", [*batch_and_seq(t), tail_const], axis=0))

    for _ in range(layers):
        split_shape = shape_of(x, [heads, d], static_split)
        merge_shape = shape_of(x, [hidden], static_merge)

        def heads_of(t: str, perm: list[int], split: str = split_shape) -> str:
            return str(g.op("Transpose", [g.op("Reshape", [t, split])], perm=perm))

        q = heads_of(g.dense(x, hidden, hidden), [0, 2, 1, 3])  # (B, H, S, D)
        k = heads_of(g.dense(x, hidden, hidden), [0, 2, 3, 1])  # (B, H, D, S)
        v = heads_of(g.dense(x, hidden, hidden), [0, 2, 1, 3])  # (B, H, S, D)
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), scale]), mask])
        probs = g.op("Softmax", [scores], axis=-1)  # (B, H, S, S)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])  # (B, S, hidden)
        x = layer_norm(g.op("Add", [g.dense(ctx, hidden, hidden), x]))
        h = g.dense(x, hidden, ffn)
        # GELU(h) = h * 0.5 * (1 + erf(h / sqrt(2))), the pattern torch.onnx emits.
        erf = g.op("Erf", [g.op("Div", [h, g.const("sqrt2", np.float32(math.sqrt(2)))])])
        gelu = g.op(
            "Mul",
            [
                g.op("Mul", [h, g.op("Add", [erf, g.const("one", np.float32(1))])]),
                g.const("half", np.float32(0.5)),
            ],
        )
        x = layer_norm(g.op("Add", [g.dense(gelu, ffn, hidden), x]))
    g.nodes[-1].output[0] = "last_hidden_state"
    return g.model(
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", seq]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", seq]),
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", seq, hidden]
            )
        ],
        "bert_encoder",
        opset,
    )


def _weight_names(model: ModelProto) -> set[str]:
    """Initializers used as the weight input of Conv/Gemm/MatMul."""
    return {
        n.input[1]
        for n in model.graph.node
        if n.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose") and len(n.input) > 1
    }


def prune(model: ModelProto, sparsity: float, *, min_size: int = 0) -> ModelProto:
    """Unstructured magnitude pruning: zero the ``sparsity`` fraction of smallest |w| per weight.

    Applies to float initializers used as Conv/Gemm/MatMul weights (ndim >= 2, at least
    ``min_size`` elements). Returns a new model; the input is not modified.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    out = ModelProto()
    out.CopyFrom(model)
    targets = _weight_names(out)
    for i, init in enumerate(out.graph.initializer):
        if init.name not in targets or init.data_type != TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init).copy()
        if w.ndim < 2 or w.size < min_size:
            continue
        k = round(w.size * sparsity)
        if k:
            # argpartition: exactly k smallest magnitudes, ties broken by position.
            idx = np.argpartition(np.abs(w).reshape(-1), k - 1)[:k]
            w.reshape(-1)[idx] = 0
        out.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, init.name))
    return out


def quantize_qdq(
    model: ModelProto,
    calibration: Iterable[Mapping[str, Array]],
    *,
    per_channel: bool = False,
    operator_format: bool = False,
) -> ModelProto:
    """Static quantization (int8 weights, uint8 activations) with onnxruntime's tool.

    ``calibration`` yields feed dicts. The default is the QDQ format (QuantizeLinear /
    DequantizeLinear pairs around float ops); ``operator_format=True`` emits QLinearConv /
    QLinearMatMul instead (only Conv and MatMul are quantized then, so the graph stays in the
    standard ONNX domain). Needs onnxruntime (a dev dependency).
    """
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, feeds: Iterable[Mapping[str, Array]]) -> None:
            self._it = iter([dict(f) for f in feeds])

        def get_next(self) -> dict[str, Array] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, src)
        quantize_static(
            str(src),
            str(dst),
            _Reader(calibration),
            quant_format=QuantFormat.QOperator if operator_format else QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["Conv", "MatMul"] if operator_format else None,
        )
        return onnx.load(str(dst))
