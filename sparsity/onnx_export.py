"""A trained network as one ONNX graph: preprocessing, the network at inference, class names.

`to_onnx(model, ...)` writes a graph that onnxruntime (or any ONNX runtime) runs without this
project:

* one input with a dynamic batch axis: MNIST pixels in [0, 1] (the graph normalises them with the
  training mean and std), or GSC log-mel features (see below); one output, ``logits``;
* k-winners as at inference (``k_inference`` winners, boosting frozen: the duty cycles and boost
  strength become constants), selected with ``topk`` (`sparsity.functional.torch_selection`);
* sparse weights as dense tensors holding their zeros;
* metadata (``metadata_props``): ``classes`` (JSON list, in logit order), ``dataset``, ``input``,
  ``preprocessing``, ``network`` (the `NetworkSpec` as JSON) and, for GSC, ``featurizer``.

The GSC featuriser (STFT, Slaney mel filters, dB relative to each clip's maximum) is not in the
graph: its parameters are in the ``featurizer`` metadata, and the graph's input is its output. With
the training split's mean and std (``featurizer=GSCFeaturizer``), the graph takes the log-mel dB
features and standardises them itself; without, it takes standardised features.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .errors import UserError
from .functional import torch_selection
from .kwinners import KWinners, KWinners2d
from .network import SparseNet
from .sparse_weights import SparseWeights, SparseWeights2d

__all__ = ["OnnxExportError", "to_onnx", "OPSET", "INPUT", "OUTPUT"]

OPSET = 17
OUTPUT = "logits"
INPUT = {"mnist": "pixels", "gsc": "log_mel"}

_EXPORTABLE = (SparseNet, nn.Sequential, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d,
               nn.ReLU, nn.Dropout, nn.Identity, nn.Flatten, KWinners, KWinners2d, SparseWeights, SparseWeights2d)


class OnnxExportError(UserError):
    """A network (or one of its layers) that cannot become an ONNX graph."""


class _Standardize(nn.Module):
    """``(x - mean) / std`` in float32, the same two operations as the training data's featuriser."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _WithPreprocessing(nn.Module):
    def __init__(self, pre: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.pre, self.net = pre, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.pre(x))


def _check_layers(model: nn.Module) -> None:
    for name, m in model.named_modules():
        if not isinstance(m, _EXPORTABLE):
            raise OnnxExportError(f"layer {name or '(model)'} ({type(m).__name__}): cannot be exported to ONNX; "
                                  f"only the layers `sparsity.build_network` makes are supported")


def _preprocessing(dataset: str, featurizer: Any) -> tuple[nn.Module, str, str, dict[str, str]]:
    """(module, input name, what the input is, extra metadata)."""
    if dataset == "mnist":
        from .data.mnist import MNIST_MEAN, MNIST_STD

        return (_Standardize(MNIST_MEAN, MNIST_STD), INPUT["mnist"],
                "MNIST pixels in [0, 1], shape (batch, 1, 28, 28)",
                {"preprocessing": f"in the graph: (pixels - {MNIST_MEAN}) / {MNIST_STD}"})
    if dataset == "gsc":
        from .data.gsc import FEATURES

        params: dict[str, Any] = dict(FEATURES)
        params.update(mean=None if featurizer is None else featurizer.mean,
                      std=None if featurizer is None else featurizer.std,
                      steps="pad or cut to 16000 samples; MelSpectrogram(power=2); 10*log10(max(mel, 1e-10)); "
                            "subtract each clip's maximum; clamp at -top_db; keep or pad (-top_db) to `frames` frames")
        meta = {"featurizer": json.dumps(params)}
        if featurizer is not None:
            meta["preprocessing"] = (f"not in the graph: the log-mel featurizer (parameters in `featurizer`); "
                                     f"in the graph: (log_mel - {featurizer.mean!r}) / {featurizer.std!r}")
            return (_Standardize(featurizer.mean, featurizer.std), INPUT["gsc"],
                    "GSC log-mel dB features (the `featurizer` metadata), shape (batch, 1, 32, 32)", meta)
        meta["preprocessing"] = ("not in the graph: the log-mel featurizer (parameters in `featurizer`), then "
                                 "(log_mel - mean) / std with the training split's mean and std")
        return nn.Identity(), "features", "GSC standardised log-mel features, shape (batch, 1, 32, 32)", meta
    return nn.Identity(), "input", "the network's input", {"preprocessing": "none"}


def to_onnx(model: SparseNet, path: str | Path, *, dataset: str, classes: Sequence[str],
            featurizer: Any = None, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (in eval mode, on the CPU) with its preprocessing as an ONNX graph at ``path``."""
    import onnx

    _check_layers(model)
    if len(classes) != model.spec.num_classes:
        raise OnnxExportError(f"classes: {len(classes)} names for a network with {model.spec.num_classes} outputs")
    model = model.to("cpu").eval()
    pre, input_name, input_doc, extra = _preprocessing(dataset, featurizer)
    wrapped = _WithPreprocessing(pre, model).eval()
    example = torch.zeros(2, *model.spec.input_shape)
    buf = io.BytesIO()
    try:
        with torch_selection(), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python ints (k, H, W: fixed by design)
            torch.onnx.export(wrapped, (example,), buf, input_names=[input_name], output_names=[OUTPUT],
                              dynamic_axes={input_name: {0: "batch"}, OUTPUT: {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
    except Exception as e:  # the exporter's own errors (an op without an ONNX form)
        reason = " ".join(str(e).split())[:300]
        raise OnnxExportError(f"{model.spec.name}: cannot be exported to ONNX ({type(e).__name__}: {reason})") from None
    proto = onnx.load_from_string(buf.getvalue())
    props = {"dataset": dataset, "classes": json.dumps(list(classes)), "input": input_doc,
             "network": json.dumps(model.spec.to_dict()),
             "inference": "k-winners keep k_inference winners; boosting frozen (duty cycles and boost strength "
                          "are constants); sparse weights are dense tensors holding their zeros",
             **extra, **(metadata or {})}
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "sparse-sweeps"
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save_model(proto, str(path))
    return path
