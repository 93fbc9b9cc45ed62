"""PyTorch modules that compute exactly the conventions of our model specs.

Docs/conventions.md defines them; Fixtures/oracle/make_traces.py maps them onto
PyTorch the same way (and made the committed fixtures the Swift tests check).
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .spec import layer_shapes, load_spec, pair, param_shapes

__all__ = ["LocalResponseNorm", "MaskDropout", "FlattenLinear", "SpecNet", "module_from_spec", "layer_module"]


def _scalar(value, like):
    """`value` rounded once (from float64) to the dtype of `like`, on its device."""
    return torch.tensor(value, dtype=torch.float64).to(dtype=like.dtype, device=like.device)


class LocalResponseNorm(nn.Module):
    """Local response normalisation across channels, in our conventions.

    `b_c = a_c / (k + A * sum_{c' in window} a_c'^2)^beta`, window
    `[c - size//2, c + (size-1)//2]`, channels outside counted as 0. `convention`
    `"paper"` means `A = alpha` (Krizhevsky et al.); `"caffe"` and `"pytorch"`
    mean `A = alpha / size` (what `torch.nn.LocalResponseNorm` computes). With
    `towers = 2` the window never crosses the middle channel: each tower's half
    of the channels is normalised on its own (Docs/towers.md).
    """

    def __init__(self, size, alpha, beta, k, convention="paper", towers=1):
        super().__init__()
        if convention not in ("paper", "caffe", "pytorch"):
            raise ValueError(f"LRN convention must be paper, caffe or pytorch, got {convention!r}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.convention, self.towers = convention, int(towers)

    def forward(self, x):
        # F.local_response_norm divides its alpha by size; the paper's alpha is not divided.
        torch_alpha = self.alpha * self.size if self.convention == "paper" else self.alpha
        parts = x.chunk(self.towers, dim=1) if self.towers > 1 else [x]
        outs = [F.local_response_norm(p, self.size, alpha=torch_alpha, beta=self.beta, k=self.k) for p in parts]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def extra_repr(self):
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention!r}, towers={self.towers}")


class MaskDropout(nn.Module):
    """Dropout that draws its 0/1 mask with torch and keeps it in `self.mask`.

    Training: `mask = (u >= p)` for `u` uniform in [0, 1), drawn with `torch.rand`
    (from `generator` when one is given, in float64 on the generator's device,
    else from the global generator on the input's device), in the input's full
    shape and dtype; or, when `next_mask` is set (a 0/1 tensor of the input's shape, e.g.
    a recorded trace's `mask.*`), that mask, once. `scaling = "paper"` computes `x * mask` in training and
    `x * (1 - p)` at inference; `"inverted"` (PyTorch's `nn.Dropout`) computes
    `(x * mask) * s` with `s = 1 / (1 - p)` rounded once to the dtype, and the
    identity at inference. `self.mask` is None until a training forward pass.
    """

    def __init__(self, p=0.5, scaling="inverted", generator=None):
        super().__init__()
        if scaling not in ("paper", "inverted"):
            raise ValueError(f"dropout scaling must be paper or inverted, got {scaling!r}")
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p, self.scaling, self.generator = float(p), scaling, generator
        self.mask = None
        self.next_mask = None

    def forward(self, x):
        if not self.training:
            self.mask = None
            return x * _scalar(1.0 - self.p, x) if self.scaling == "paper" else x.clone()
        if self.next_mask is not None:
            given, self.next_mask = self.next_mask, None
            if given.numel() != x.numel():
                raise ValueError(f"next_mask has {given.numel()} elements, the input {list(x.shape)}")
            self.mask = given.detach().reshape(x.shape).to(dtype=x.dtype, device=x.device)
            u = None
        elif self.generator is not None:
            u = torch.rand(tuple(x.shape), generator=self.generator, dtype=torch.float64,
                           device=self.generator.device)
        else:
            u = torch.rand(tuple(x.shape), dtype=x.dtype, device=x.device)
        if u is not None:
            self.mask = (u >= self.p).to(dtype=x.dtype, device=x.device)
        y = x * self.mask
        if self.scaling == "inverted":
            y = y * _scalar(1.0 / (1.0 - self.p), x)
        return y

    def extra_repr(self):
        return f"p={self.p}, scaling={self.scaling!r}"


class FlattenLinear(nn.Linear):
    """`nn.Linear` that first flattens its input row-major (C, H, W) from dimension 1."""

    def forward(self, x):
        return F.linear(x.flatten(1), self.weight, self.bias)


class SpecNet(nn.Sequential):
    """The network of a spec: an `nn.Sequential` whose children are named after the
    spec's layers (`net.conv1`, `net.lrn1`, ...); `net.spec` is the normalised spec."""

    def __init__(self, spec, layers):
        super().__init__(layers)
        self.spec = spec


def layer_module(layer, in_shape, towers=1, generator=None):
    """The module of one (normalised) spec layer for the per-image input shape `in_shape`.

    conv: `nn.Conv2d` with the spec's groups; linear: `FlattenLinear`; lrn:
    `LocalResponseNorm` (within each tower when `towers` = 2); maxpool/avgpool:
    `nn.MaxPool2d`/`nn.AvgPool2d` with `ceil_mode = (rounding == "ceil")` and
    `count_include_pad = count_include_padding` (PyTorch's ceil drops a last window
    that starts in the padding, as ours does; PyTorch refuses padding larger than
    half the kernel, which our specs allow, so such a spec raises here); relu, tanh;
    dropout: `MaskDropout`. Weights are left as PyTorch initialises them.
    """
    t = layer["type"]
    if t == "conv":
        return nn.Conv2d(in_shape[0], layer["outputs"], pair(layer["kernel"]), stride=pair(layer["stride"]),
                         padding=pair(layer["padding"]), groups=layer["groups"], bias=layer["bias"] is not False)
    if t == "linear":
        return FlattenLinear(int(math.prod(in_shape)), layer["outputs"], bias=layer["bias"] is not False)
    if t == "lrn":
        return LocalResponseNorm(layer["size"], layer["alpha"], layer["beta"], layer["k"], layer["convention"], towers)
    if t in ("maxpool", "avgpool"):
        k, s, p = pair(layer["kernel"]), pair(layer["stride"]), pair(layer["padding"])
        if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
            raise ValueError(f"layer {layer['name']!r}: PyTorch pools refuse padding {p} larger than half the "
                             f"kernel {k} (our specs allow it; this spec cannot be run in PyTorch)")
        if t == "maxpool":
            return nn.MaxPool2d(k, s, p, ceil_mode=layer["rounding"] == "ceil")
        return nn.AvgPool2d(k, s, p, ceil_mode=layer["rounding"] == "ceil",
                            count_include_pad=bool(layer["count_include_padding"]))
    if t == "relu":
        return nn.ReLU()
    if t == "tanh":
        return nn.Tanh()
    if t == "dropout":
        return MaskDropout(layer["rate"], layer["scaling"], generator=generator)
    raise ValueError(f"unknown layer type {t!r}")


def module_from_spec(spec, *, init="fan-in", seed=0, dtype=torch.float32, device="cpu", mask_seed=None):
    """A `torch.nn.Module` (a `SpecNet`, an `nn.Sequential`) computing `spec` in our conventions.

    `spec`: a path to a spec JSON file, a JSON text or a dict (Docs/models.md).
    Each child is named after its spec layer (`model.conv1`, `model.fc8`), so
    `record_step` finds them without a `layer_map`. See `layer_module` for what
    each layer type becomes; two-tower specs (`"towers": 2`) run as the grouped
    model (conv groups as the spec says, crossing layers whole), with LRN
    normalising within each tower's half of the channels, which computes what two
    towers compute (Docs/towers.md).

    Weights are seeded: drawn from `torch.Generator().manual_seed(seed)` on the CPU
    in float64, in layer order, N(0, 1/fan_in) (`init = "fan-in"`, the default,
    as the committed fixtures) or N(0, 0.01^2) (`init = "paper"`), then rounded
    to `dtype` and moved to `device`; biases are the spec's constants (`"bias":
    1.0` gives ones). `init = None` keeps PyTorch's own initialisation. The
    dropout layers draw their masks from a CPU generator seeded with `mask_seed`
    (default `seed + 1`), so a CUDA model draws the same masks as a CPU one.
    """
    s = load_spec(spec)
    if init not in ("fan-in", "paper", None):
        raise ValueError(f"init must be 'fan-in', 'paper' or None, got {init!r}")
    masks = torch.Generator(device="cpu").manual_seed(seed + 1 if mask_seed is None else mask_seed)
    layers = OrderedDict()
    draws = torch.Generator(device="cpu").manual_seed(seed)
    for layer, in_shape, _ in layer_shapes(s):
        m = layer_module(layer, in_shape, s["towers"], generator=masks).to(dtype=dtype)  # then copy: f64 stays f64
        if init is not None:
            with torch.no_grad():
                for name, shape in param_shapes(layer, in_shape):
                    target = getattr(m, name.rsplit(".", 1)[1])
                    if name.endswith(".weight"):
                        std = 0.01 if init == "paper" else 1.0 / math.sqrt(int(math.prod(shape[1:])))
                        value = torch.randn(shape, generator=draws, dtype=torch.float64) * std
                    else:
                        value = torch.full(shape, float(layer["bias"]), dtype=torch.float64)
                    target.copy_(value)
        layers[layer["name"]] = m
    return SpecNet(s, layers).to(dtype=dtype, device=device)
