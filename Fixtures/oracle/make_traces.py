#!/usr/bin/env python3
"""Golden traces for the correctness oracle (`alexnet check`), made with PyTorch.

A trace (Docs/oracle.md, format `alexnet-trace/1`) is one training step of a
whole network (`kind` = network) or one layer alone (`kind` = layer), with
every tensor the step produces. This script builds any model spec of ours
(Docs/models.md) in PyTorch, runs the step and writes the trace, either as one
safetensors file or as a directory of .npy files plus metadata.json.

Requirements: Python 3.9+, torch (tested with 2.13.0+cpu), numpy, safetensors.

    pip install "torch==2.13.0+cpu" numpy safetensors
    # offline: pip install --no-index --find-links /opt/wheels torch==2.13.0+cpu

Usage (from anywhere; paths are relative to the current directory):

    # every committed fixture, into Fixtures/oracle/ (what is checked in):
    python3 make_traces.py --all
    # the same fixtures computed on a GPU, into another folder (for comparison):
    python3 make_traces.py --all --device cuda --out-root /tmp/cuda-traces

    # one network trace:
    python3 make_traces.py --spec paper-narrow.json --dtype f64 --sgd paper \\
        --batch 2 --init fan-in --seed 32 --input-std 10 --out my-trace.safetensors
    python3 make_traces.py --spec ../models/cifar-towers.json --towers-tensors \\
        --npy-dir my-trace-dir
    # one layer alone (the layer as one JSON object of a spec's "layers"):
    python3 make_traces.py --layer '{"name": "c", "type": "conv", "outputs": 6, "kernel": [3, 5],
        "stride": 2, "padding": 1, "groups": 2, "bias": 0.0}' --input-shape 2,4,9,11 --out c.safetensors

    # recompute every committed trace in float64 and check it is consistent:
    python3 make_traces.py --self-check            # all of Fixtures/oracle
    python3 make_traces.py --self-check some.safetensors some-npy-dir

What a network trace holds (names as in Docs/oracle.md): `input` [N, C, H, W]
drawn N(0, --input-std^2); `labels` uniform over the classes; `param.*` with
weights N(0, 0.01^2) (--init paper, the paper's; the default) or N(0, 1/fan_in)
(--init fan-in, used by the committed fixtures, see FIXTURE_SETTINGS) and
biases the spec's constants; `mask.<dropout>` 0/1 masks (kept where u >= rate,
u uniform);
`forward.<layer>` for every layer; `loss` (mean softmax cross-entropy, shape
[]); `grad.scores`; `grad_input.<layer>` for every layer (`grad_input.<first
layer>` is dLoss/dInput); `grad.<param>`; `updated.<param>` after one SGD step
from zero velocity. Every random draw comes from torch.Generator(cpu) seeded
with --seed, in float64, then is rounded to the trace's dtype and moved to the
device, so CPU and CUDA runs start from bitwise the same tensors. The
`producer` metadata records the settings (seed, batch, init, input scale).

Layer traces: `input`, `param.*` (weights N(0, 1/fan_in), biases N(0, 0.1^2)),
`mask.<name>` (dropout in training), `forward.<name>`, `grad_output.<name>`
N(0, 1), `grad.<name>.*`, `grad_input.<name>`.

Files are written deterministically: safetensors headers list `__metadata__`
then the tensors in Docs/oracle.md's execution order (each tower tensor after
its grouped one), and PyTorch runs on one CPU thread (its convolution weight
gradients change in the last bits with the thread count), so --all rewrites
the committed fixtures byte for byte on the same kind of CPU and torch build.

How our conventions (Docs/conventions.md) map onto PyTorch:
- conv: F.conv2d(groups=...). linear: F.linear(x.flatten(1)).
- LRN: F.local_response_norm(size, alpha', beta, k) whose alpha' is divided by
  size inside PyTorch: `paper` passes alpha * size, `caffe` and `pytorch` pass
  alpha. With "towers": 2 in the spec, LRN runs on each half of the channels
  separately (the window never crosses the tower boundary); every other layer
  runs on the whole tensors (the grouped model, which is what two towers compute).
- max/avg pooling: F.max_pool2d / F.avg_pool2d, ceil_mode = (rounding == ceil),
  count_include_pad = count_include_padding.
- dropout, applied by hand with the recorded mask: paper scaling multiplies by
  the mask in training and by (1 - rate) at inference; inverted computes
  (x * mask) * s with s = 1 / (1 - rate) rounded once to the dtype (the
  reference's order), and is the identity at inference.
- SGD by hand, not torch.optim, one rounded operation at a time in the trace's
  dtype, from v = 0 (the order of Sources/AlexNetKit/Training/SGD.swift):
    paper:   v = ((mu * v) - (r * w)) - (lr * g);  w' = w + v,  r = dtype(wd * lr)
    pytorch: v = (mu * v) + (g + (wd * w));         w' = w - (lr * v)

--towers-tensors (a spec with "towers": 2) adds tower<t>.forward.<layer>,
tower<t>.grad_input.<layer>, tower<t>.param/grad/updated.<param>: tower t's half
of the grouped tensor along dimension 1 (activations) or dimension 0
(parameters). The first layer's tower grad_input is left out when the first
layer sees the whole input on both towers (a groups-1 convolution): there each
tower holds a partial image gradient, not a half of it.

--break makes a deliberately wrong reference (Fixtures/oracle/broken/):
- lrn-alpha: paper-convention LRN computed with PyTorch given the paper's alpha
  directly (so the window sum is multiplied by alpha / size: 5x too weak).
- conv3-swap: conv3 computed with its two output halves (the towers' rows) of
  the weight swapped; the recorded param.conv3.weight is the correct one, and
  grad.conv3.weight is the gradient with respect to that recorded tensor.
- pool-ceil[:LAYER]: one max pool whose spec says floor computed with
  ceil_mode=True (default: the first floor max pool where that changes the
  output size), so its forward has the wrong shape.

--omit PATTERN (fnmatch, repeatable) leaves tensors out of a trace to keep a
fixture small; the required ones (input, labels, param.*, mask.*) cannot be.

--self-check recomputes every trace in float64 from its own tensors: layer by
layer from the recorded inputs of each layer (so a corrupted tensor is named),
loss and grad.scores from the recorded scores, updated.* bitwise from the
recorded param.* and grad.* in the trace's dtype, tower tensors as exact slices,
metadata, dtypes and shapes. Traces under broken/ must fail, at the tensor
listed in BROKEN_EXPECTED.

On CUDA (--device cuda) TF32 is switched off and deterministic algorithms are
requested, so the f32 traces are true float32.
"""
import argparse
import fnmatch
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
FORMAT = "alexnet-trace/1"
FORMAT_STEPS = "alexnet-trace/2"
DTYPES = {"f32": torch.float32, "f64": torch.float64}
REQUIRED_PATTERNS = ("input", "labels", "param.*", "mask.*")

# ---------------------------------------------------------------------------
# Model specs: reading, defaults, canonical text (the format of `alexnet summary
# --json`), shared with the pip-installable producer in python/alexnet_trace.
# ---------------------------------------------------------------------------

sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from alexnet_trace.spec import (  # noqa: E402  (after the path it needs)
    load_spec, layer_json, normalise_layer, normalise_spec, pair, param_shapes, spec_json)
from alexnet_trace.spec import output_shape as spec_output_shape  # noqa: E402


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

def output_shape(layer, shape, ceil_override=False):
    """Per-image output shape of `layer` for per-image input `shape` (a list);
    `ceil_override` pools as if the spec said ceil (to find where floor and ceil differ)."""
    if ceil_override and layer["type"] in ("maxpool", "avgpool"):
        layer = dict(layer, rounding="ceil")
    return spec_output_shape(layer, shape)


# ---------------------------------------------------------------------------
# One layer in PyTorch
# ---------------------------------------------------------------------------

class Broken:
    """Which deliberate mistake to make (--break)."""

    def __init__(self, what=None):
        self.lrn_alpha = self.conv3_swap = False
        self.pool_ceil = None  # layer name
        if what is None:
            return
        if what == "lrn-alpha":
            self.lrn_alpha = True
        elif what == "conv3-swap":
            self.conv3_swap = True
        elif what == "pool-ceil" or what.startswith("pool-ceil:"):
            self.pool_ceil = what.split(":", 1)[1] if ":" in what else ""
        else:
            raise ValueError(f"--break: unknown {what!r}; expected lrn-alpha, conv3-swap or pool-ceil[:LAYER]")


def scalar(value, like):
    """`value` rounded once to the dtype of `like`, as a 0-d tensor on its device."""
    return torch.tensor(value, dtype=torch.float64).to(dtype=like.dtype, device=like.device)


def layer_forward(layer, x, params, mask, towers=1, mode="training", broken=None):
    """Output of `layer` on batch `x`; differentiable in x and params."""
    broken = broken or Broken()
    t, n = layer["type"], layer["name"]
    if t == "conv":
        w, b = params[f"{n}.weight"], params.get(f"{n}.bias")
        if broken.conv3_swap and n == "conv3":
            half = w.shape[0] // 2
            w = torch.cat([w[half:], w[:half]], 0)
        return F.conv2d(x, w, b, stride=pair(layer["stride"]), padding=pair(layer["padding"]), groups=layer["groups"])
    if t == "linear":
        return F.linear(x.flatten(1), params[f"{n}.weight"], params.get(f"{n}.bias"))
    if t == "lrn":
        size, alpha = layer["size"], float(layer["alpha"])
        torch_alpha = alpha * size if layer["convention"] == "paper" and not broken.lrn_alpha else alpha
        parts = x.chunk(towers, dim=1) if towers > 1 else [x]
        outs = [F.local_response_norm(p, size, alpha=torch_alpha, beta=float(layer["beta"]), k=float(layer["k"]))
                for p in parts]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)
    if t == "maxpool":
        ceil = layer["rounding"] == "ceil" or broken.pool_ceil == n
        return F.max_pool2d(x, pair(layer["kernel"]), pair(layer["stride"]), pair(layer["padding"]), ceil_mode=ceil)
    if t == "avgpool":
        return F.avg_pool2d(x, pair(layer["kernel"]), pair(layer["stride"]), pair(layer["padding"]),
                            ceil_mode=layer["rounding"] == "ceil",
                            count_include_pad=bool(layer["count_include_padding"]))
    if t == "relu":
        return F.relu(x)
    if t == "tanh":
        return torch.tanh(x)
    if t == "dropout":
        rate = float(layer["rate"])
        if mode == "training":
            y = x * mask
            if layer["scaling"] == "inverted":
                y = y * scalar(1.0 / (1.0 - rate), x)
            return y
        if layer["scaling"] == "paper":
            return x * scalar(1.0 - rate, x)
        return x.clone()
    raise ValueError(f"unknown layer type {t!r}")


# ---------------------------------------------------------------------------
# Random draws (CPU generator, float64, then cast and moved)
# ---------------------------------------------------------------------------

class Draws:
    def __init__(self, seed, dtype, device):
        self.g = torch.Generator(device="cpu").manual_seed(seed)
        self.dtype, self.device = dtype, device

    def _out(self, t):
        return t.to(dtype=self.dtype).to(self.device)

    def normal(self, shape, std=1.0):
        return self._out(torch.randn(shape, generator=self.g, dtype=torch.float64) * std)

    def mask(self, shape, rate):
        u = torch.rand(shape, generator=self.g, dtype=torch.float64)
        return self._out((u >= rate).to(torch.float64))

    def labels(self, n, classes):
        return torch.randint(classes, (n,), generator=self.g, dtype=torch.int64).to(self.device)

    def integers(self, shape, low, high):
        return self._out(torch.randint(low, high, shape, generator=self.g, dtype=torch.int64).to(torch.float64))


# ---------------------------------------------------------------------------
# SGD, one step from zero velocity, in the documented order
# ---------------------------------------------------------------------------

def sgd_step(w, g, form, lr, momentum, weight_decay):
    v = torch.zeros_like(w)
    lr_t, mu_t = scalar(lr, w), scalar(momentum, w)
    if form == "paper":
        r_t = scalar(weight_decay * lr, w)  # the paper's 0.0005 * lr, rounded once
        v = ((mu_t * v) - (r_t * w)) - (lr_t * g)
        return w + v
    if form == "pytorch":
        wd_t = scalar(weight_decay, w)
        v = (mu_t * v) + (g + (wd_t * w))
        return w - (lr_t * v)
    raise ValueError(f"unknown SGD form {form!r}")


# ---------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------

def producer_text(device, settings, broken_what=None):
    dev = "cpu" if device == "cpu" else f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    text = f"pytorch {torch.__version__} on {dev}; Fixtures/oracle/make_traces.py {settings}"
    if broken_what:
        text += f"; DELIBERATELY BROKEN: {broken_what}"
    return text


def first_differing_pool(spec):
    shape = spec["input"]
    for l in spec["layers"]:
        if l["type"] == "maxpool" and l["rounding"] == "floor":
            if output_shape(l, shape, ceil_override=True) != output_shape(l, shape):
                return l["name"]
        shape = output_shape(l, shape)
    return None


def weight_std(init, shape):
    """Standard deviation of a weight of `shape` ([out, ...]) under --init."""
    if init == "paper":
        return 0.01
    if init == "fan-in":
        return 1.0 / math.sqrt(int(np.prod(shape[1:])))
    raise ValueError(f"--init: unknown {init!r}; expected paper or fan-in")


def network_trace(spec, dtype="f64", sgd="paper", lr=0.01, momentum=0.9, weight_decay=0.0005, batch=2, seed=0,
                  input_std=1.0, mode="training", towers_tensors=False, broken_what=None, device="cpu",
                  init="paper"):
    """One training step of `spec`; returns (tensors, metadata)."""
    spec = normalise_spec(spec)
    broken = Broken(broken_what)
    if broken.pool_ceil == "":
        broken.pool_ceil = first_differing_pool(spec)
        if broken.pool_ceil is None:
            raise ValueError("--break pool-ceil: no floor max pool of this spec changes size with ceil; "
                             "pick another input size or name the layer (pool-ceil:LAYER)")
    if broken.conv3_swap and not any(l["name"] == "conv3" and l["type"] == "conv" for l in spec["layers"]):
        raise ValueError("--break conv3-swap: the spec has no conv layer named conv3")
    towers = spec["towers"]
    if towers_tensors and towers != 2:
        raise ValueError("--towers-tensors needs a spec with \"towers\": 2")
    td = DTYPES[dtype]
    draws = Draws(seed, td, device)
    n = batch
    x0 = draws.normal([n] + spec["input"], input_std)
    classes = spec["layers"][-1]["outputs"]
    labels = draws.labels(n, classes)

    # Parameters (the paper's initialisation) and masks, in layer order.
    params, masks = {}, {}
    shape = spec["input"]
    for l in spec["layers"]:
        for name, pshape in param_shapes(l, shape):
            if name.endswith(".weight"):
                params[name] = draws.normal(pshape, weight_std(init, pshape))
            else:
                params[name] = torch.full(pshape, float(l["bias"]), dtype=torch.float64).to(td).to(device)
        if l["type"] == "dropout" and mode == "training":
            masks[l["name"]] = draws.mask([n] + shape, float(l["rate"]))
        shape = output_shape(l, shape)

    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    x = x0.clone().requires_grad_(True)
    inputs, outputs = {}, {}
    h = x
    for l in spec["layers"]:
        if h is not x:
            h.retain_grad()
        inputs[l["name"]] = h
        h = layer_forward(l, h, leaves, masks.get(l["name"]), towers, mode, broken)
        outputs[l["name"]] = h
    scores = h
    scores.retain_grad()
    loss = F.cross_entropy(scores, labels, reduction="mean")
    loss.backward()

    T = {"input": x0, "labels": labels}
    for k, v in params.items():
        T[f"param.{k}"] = v
    for k, v in masks.items():
        T[f"mask.{k}"] = v
    for l in spec["layers"]:
        T[f"forward.{l['name']}"] = outputs[l["name"]].detach()
    T["loss"] = loss.detach()
    T["grad.scores"] = scores.grad
    for l in reversed(spec["layers"]):  # backward order: the last layer first
        for k in params:
            if k.rsplit(".", 1)[0] == l["name"]:
                T[f"grad.{k}"] = leaves[k].grad
        T[f"grad_input.{l['name']}"] = inputs[l["name"]].grad
    settings = f"--seed {seed} --batch {batch} --init {init} --input-std {input_std:g}"
    meta = {"format": FORMAT, "kind": "network", "spec": spec_json(spec), "dtype": dtype, "mode": mode,
            "producer": producer_text(device, settings, broken_what)}
    if mode == "training":
        for k in params:
            T[f"updated.{k}"] = sgd_step(params[k], leaves[k].grad, sgd, lr, momentum, weight_decay)
        meta.update({"sgd_form": sgd, "learning_rate": repr(float(lr)), "momentum": repr(float(momentum)),
                     "weight_decay": repr(float(weight_decay))})
    if towers_tensors:
        meta["towers"] = "2"
        first = spec["layers"][0]
        shared_input = first["type"] == "linear" or (first["type"] == "conv" and first["groups"] % 2 != 0)
        for t in range(2):
            for l in spec["layers"]:
                name = l["name"]
                T[f"tower{t}.forward.{name}"] = outputs[name].detach().chunk(2, dim=1)[t]
                if not (l is first and shared_input):
                    T[f"tower{t}.grad_input.{name}"] = inputs[name].grad.chunk(2, dim=1)[t]
            for k in params:
                for kind in ("param", "grad", "updated"):
                    if f"{kind}.{k}" in T:
                        T[f"tower{t}.{kind}.{k}"] = T[f"{kind}.{k}"].chunk(2, dim=0)[t]
    return T, meta


def layer_trace(layer, input_shape, dtype="f64", seed=0, input_std=1.0, param_std=0.1, mode="training",
                device="cpu", input_kind="normal", zeros=0, broken_what=None):
    """One layer alone: input, params, mask, forward, a random grad_output, grad_input, grads."""
    layer = normalise_layer(layer)
    broken = Broken(broken_what)
    if broken.pool_ceil == "":
        broken.pool_ceil = layer["name"]
    td = DTYPES[dtype]
    draws = Draws(seed, td, device)
    if input_kind == "integers":  # small integers: many exact ties (max pooling)
        x0 = draws.integers(input_shape, 0, 3)
    else:
        x0 = draws.normal(input_shape, input_std)
    if zeros:  # exact zeros at fixed positions (ReLU's gradient at 0)
        flat = x0.view(-1)
        flat[:: max(1, flat.numel() // zeros)] = 0
    params = {}
    for name, pshape in param_shapes(layer, list(input_shape[1:])):
        std = (1.0 / math.sqrt(np.prod(pshape[1:]))) if name.endswith(".weight") else param_std
        params[name] = draws.normal(pshape, std)
    mask = None
    if layer["type"] == "dropout" and mode == "training":
        mask = draws.mask(input_shape, float(layer["rate"]))
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    x = x0.clone().requires_grad_(True)
    y = layer_forward(layer, x, leaves, mask, 1, mode, broken)
    gy = draws.normal(list(y.shape))
    y.backward(gy)
    name = layer["name"]
    T = {"input": x0}
    for k, v in params.items():
        T[f"param.{k}"] = v
    if mask is not None:
        T[f"mask.{name}"] = mask
    T[f"forward.{name}"] = y.detach()
    T[f"grad_output.{name}"] = gy
    for k in params:
        T[f"grad.{k}"] = leaves[k].grad
    T[f"grad_input.{name}"] = x.grad
    settings = f"--seed {seed} --input-std {input_std:g}"
    meta = {"format": FORMAT, "kind": "layer", "layer": layer_json(layer), "dtype": dtype, "mode": mode,
            "producer": producer_text(device, settings, broken_what)}
    return T, meta


# ---------------------------------------------------------------------------
# Writing and reading traces
# ---------------------------------------------------------------------------

def is_required(name):
    return any(fnmatch.fnmatchcase(name, p) for p in REQUIRED_PATTERNS)


def apply_omit(T, patterns):
    for p in patterns or []:
        for name in [k for k in T if fnmatch.fnmatchcase(k, p)]:
            if is_required(name):
                raise ValueError(f"--omit {p}: {name} is required by the trace format")
            del T[name]
    return T


def to_cpu(T):
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in T.items()}


ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}


def execution_order(names):
    """Tensor names in Docs/oracle.md's order (inputs first, then forward, loss,
    grad.scores, backward, updated), each tower tensor after its grouped one."""
    names = list(names)
    base = {n: n.split(".", 1)[1] if n.startswith("tower") else n for n in names}
    first = {}
    for i, n in enumerate(names):  # names arrive in the order the step made them
        first.setdefault(base[n], i)
    return sorted(names, key=lambda n: (first[base[n]], n != base[n], n))


def write_safetensors(path, T, meta):
    """A safetensors file with a deterministic layout (the `safetensors` package
    writes its metadata in hash order, so identical traces would differ in bytes):
    header keys __metadata__ (keys in insertion order) then the tensors in
    execution order, data in the same order, header padded with spaces to 8 bytes."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    T = to_cpu(T)
    header, blobs, offset = {"__metadata__": dict(meta)}, [], 0
    for name in execution_order(T):
        t = T[name]
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in blobs:
            f.write(data)


def write_npy_dir(path, T, meta):
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        if old.endswith(".npy") or old == "metadata.json":
            os.remove(os.path.join(path, old))
    for k, v in to_cpu(T).items():
        np.save(os.path.join(path, k + ".npy"), v.numpy().astype(v.numpy().dtype.newbyteorder("<"), copy=False))
    with open(os.path.join(path, "metadata.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_trace(path):
    """(tensors as float64/int64 CPU torch tensors keyed by name, their stored dtypes, metadata)."""
    T, stored = {}, {}
    if os.path.isdir(path):
        with open(os.path.join(path, "metadata.json"), encoding="utf-8") as f:
            meta = json.load(f)
        for fn in sorted(os.listdir(path)):
            if fn.endswith(".npy"):
                a = np.load(os.path.join(path, fn), allow_pickle=False)
                T[fn[:-4]] = torch.from_numpy(np.ascontiguousarray(a))
    else:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            for k in f.keys():
                T[k] = f.get_tensor(k)
    for k, v in T.items():
        stored[k] = v.dtype
    return T, stored, meta


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.failures = []  # (tensor name, message) in execution order of discovery
        self.checked = 0

    def fail(self, name, message):
        self.failures.append((name, message))

    def close(self, name, got, want, tol):
        """got (recorded) vs want (recomputed in f64), element by element:
        |got - want| <= rtol * |want| + atol * max|want|, with tol = (rtol, atol)."""
        rtol, atol = tol
        self.checked += 1
        if tuple(got.shape) != tuple(want.shape):
            self.fail(name, f"shape {list(got.shape)}, recomputed {list(want.shape)}")
            return False
        if got.numel() == 0:
            return True
        g, w = got.double(), want.double()
        if not torch.isfinite(g).all():
            self.fail(name, "not finite")
            return False
        scale = float(w.abs().max())
        excess = (g - w).abs() - (rtol * w.abs() + atol * scale)
        worst = int(excess.argmax())
        if float(excess.view(-1)[worst]) > 0:
            idx = [int(i) for i in np.unravel_index(worst, tuple(w.shape))]
            self.fail(name, f"at {idx}: {float(g.view(-1)[worst]):.17g}, recomputed {float(w.view(-1)[worst]):.17g} "
                            f"(bound {rtol:.0e} relative + {atol:.0e} x max|ref| {scale:.3e}); "
                            f"{int((excess > 0).sum())} element(s) out of bound")
            return False
        return True


def check_metadata(meta, T, stored, rep):
    for key in ("format", "kind", "dtype", "mode"):
        if key not in meta:
            rep.fail("metadata", f"missing {key}")
    if meta.get("format") != FORMAT:
        rep.fail("metadata", f"format {meta.get('format')!r}")
    if meta.get("dtype") not in DTYPES:
        rep.fail("metadata", f"dtype {meta.get('dtype')!r}")
        return None
    if meta.get("mode") not in ("training", "inference"):
        rep.fail("metadata", f"mode {meta.get('mode')!r}")
    if any(k.startswith("updated.") for k in T):
        for key in ("sgd_form", "learning_rate", "momentum", "weight_decay"):
            if key not in meta:
                rep.fail("metadata", f"updated.* present but {key} missing")
    td = DTYPES[meta["dtype"]]
    for k, dt in stored.items():
        want = torch.int64 if k == "labels" else td
        if dt != want:
            rep.fail(k, f"dtype {dt}, expected {want}")
    for k, v in T.items():
        if k.startswith("mask.") and not bool(((v == 0) | (v == 1)).all()):
            rep.fail(k, "mask is not 0/1")
    return td


def recompute_layer(layer, x, params, mask, towers, mode, grad_out):
    """f64 forward of one layer from x, and (if grad_out is given) its vector-Jacobian product."""
    x = x.double().clone().requires_grad_(True)
    leaves = {k: v.double().clone().requires_grad_(True) for k, v in params.items()}
    y = layer_forward(layer, x, leaves, None if mask is None else mask.double(), towers, mode)
    grads = {}
    if grad_out is not None and tuple(grad_out.shape) == tuple(y.shape):
        y.backward(grad_out.double())
        grads = {"input": x.grad, **{k: v.grad for k, v in leaves.items()}}
    return y.detach(), grads


# (rtol, atol as a fraction of the tensor's largest magnitude) of the self-check.
# Measured on the committed fixtures: f64 recomputes agree to ~1e-16, f32 ones
# within 1e-6 x max; these bounds catch a 1e-3 relative change of any element
# above ~0.3% of its tensor's largest (f32), or a 1e-10 relative change (f64).
TOLERANCES = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 3e-6)}


TOLERANCE_SCALE = 1.0  # --tolerance-scale


def tolerance(dtype):
    rtol, atol = TOLERANCES[dtype]
    return rtol * TOLERANCE_SCALE, atol * TOLERANCE_SCALE


def self_check_trace(path):
    T, stored, meta = read_trace(path)
    if meta.get("format") == FORMAT_STEPS:
        return self_check_steps(T, stored, meta)
    return self_check_contents(T, stored, meta)


def self_check_steps(T, stored, meta):
    """A version 2 trace: each step recomputed as a one-step trace from its own tensors (its
    `updated.*` left to the chain check), then the SGD chain in float64: step t starts from
    step t-1's `updated.*`, and `updated.*` and `velocity.*` follow from the step's start, its
    gradient and the velocity carried, at the step's learning rate. Failures are named as in the file."""
    rep = Report()
    steps = int(meta["steps"])
    rates = [float(r) for r in meta.get("learning_rates", ",".join([meta["learning_rate"]] * steps)).split(",")]
    tol = tolerance(DTYPES[meta["dtype"]])
    names = [k[len("param."):] for k in T if k.startswith("param.")]
    start = {k: T[f"param.{k}"] for k in names}
    velocity = {}
    for t in range(1, steps + 1):
        prefix = f"step{t}."
        view = {k[len(prefix):]: v for k, v in T.items() if k.startswith(prefix)}
        view.update({f"param.{k}": v for k, v in start.items()})
        chain = {k: view.pop(k) for k in list(view) if k.startswith(("updated.", "velocity."))}
        step_meta = dict(meta, format=FORMAT, learning_rate=repr(rates[t - 1]))
        sub = self_check_contents(view, {k: v.dtype for k, v in view.items()}, step_meta)
        rep.failures += [(prefix + n, m) for n, m in sub.failures]
        rep.checked += sub.checked
        for k in names:
            w, v = sgd_step_from(start[k].double(), view[f"grad.{k}"].double(), meta["sgd_form"], rates[t - 1],
                                 float(meta["momentum"]), float(meta["weight_decay"]), velocity.get(k))
            for kind, want in (("updated", w), ("velocity", v)):
                if f"{kind}.{k}" in chain:
                    rep.close(f"{prefix}{kind}.{k}", chain[f"{kind}.{k}"], want, tol)
                elif kind == "updated" and t < steps:
                    rep.fail(f"{prefix}updated.{k}", "missing: the next step starts from it")
            velocity[k] = chain[f"velocity.{k}"].double() if f"velocity.{k}" in chain else v
            start[k] = chain.get(f"updated.{k}", w)
    return rep


def sgd_step_from(w, g, form, lr, momentum, weight_decay, v=None):
    """`sgd_step` from velocity `v` (zero when None): returns `(w', v')` in `w`'s dtype."""
    v = torch.zeros_like(w) if v is None else v
    if form == "paper":
        v = ((momentum * v) - ((weight_decay * lr) * w)) - (lr * g)
        return w + v, v
    v = (momentum * v) + (g + (weight_decay * w))
    return w - (lr * v), v


def steps_trace(spec, steps, dtype="f64", sgd="paper", lrs=(0.01,), momentum=0.9, weight_decay=0.0005, batch=2,
                seed=0, input_std=10.0, init="fan-in", device="cpu"):
    """T training steps of `spec` (format version 2), made by the pip-installable producer
    (python/alexnet_trace's `record_steps`): a seeded `module_from_spec` model, a new batch per step
    (N(0, input_std^2) images, uniform labels) from `torch.Generator().manual_seed(seed + 2)`."""
    from alexnet_trace import module_from_spec, record_steps
    td = DTYPES[dtype]
    model = module_from_spec(spec, init=init, seed=seed, dtype=td, device=device)
    g = torch.Generator(device="cpu").manual_seed(seed + 2)
    classes = spec["layers"][-1]["outputs"]
    batches = [((torch.randn([batch] + spec["input"], generator=g, dtype=torch.float64) * input_std).to(td),
                torch.randint(classes, (batch,), generator=g, dtype=torch.int64)) for _ in range(steps)]
    rates = list(lrs) if len(lrs) == steps else [float(lrs[0])] * steps
    T, meta = record_steps(model, spec, batches, None, sgd_form=sgd, lr=rates, momentum=momentum,
                           weight_decay=weight_decay,
                           producer=f"make_traces.py --steps {steps} --seed {seed} --batch {batch} --init {init}")
    return T, meta


def self_check_contents(T, stored, meta):
    rep = Report()
    td = check_metadata(meta, T, stored, rep)
    if td is None:
        return rep
    tol = tolerance(td)
    mode = meta.get("mode", "training")
    for req in ("input",):
        if req not in T:
            rep.fail(req, "required tensor missing")
            return rep
    if meta.get("kind") == "layer":
        layer = normalise_layer(json.loads(meta["layer"]))
        name = layer["name"]
        pnames = [k for k, _ in param_shapes(layer, list(T["input"].shape[1:]))]
        params = {}
        for k in pnames:
            if f"param.{k}" not in T:
                rep.fail(f"param.{k}", "required tensor missing")
            else:
                params[k] = T[f"param.{k}"]
        mask = T.get(f"mask.{name}")
        if layer["type"] == "dropout" and mode == "training" and mask is None:
            rep.fail(f"mask.{name}", "required tensor missing")
            return rep
        y, grads = recompute_layer(layer, T["input"], params, mask, 1, mode, T.get(f"grad_output.{name}"))
        if f"forward.{name}" in T:
            rep.close(f"forward.{name}", T[f"forward.{name}"], y, tol)
        if f"grad_output.{name}" in T:
            if tuple(T[f"grad_output.{name}"].shape) != tuple(y.shape):
                rep.fail(f"grad_output.{name}", f"shape {list(T[f'grad_output.{name}'].shape)}, "
                                                f"output {list(y.shape)}")
            else:
                for k in pnames:
                    if f"grad.{k}" in T:
                        rep.close(f"grad.{k}", T[f"grad.{k}"], grads[k], tol)
                if f"grad_input.{name}" in T:
                    rep.close(f"grad_input.{name}", T[f"grad_input.{name}"], grads["input"], tol)
        return rep

    if meta.get("kind") != "network":
        rep.fail("metadata", f"kind {meta.get('kind')!r}")
        return rep
    spec = normalise_spec(json.loads(meta["spec"]))
    if spec_json(spec) != meta["spec"]:
        rep.fail("metadata", "spec is not in the canonical text of `alexnet summary --json`")
    towers = spec["towers"]
    layers = spec["layers"]
    if list(T["input"].shape[1:]) != spec["input"]:
        rep.fail("input", f"shape {list(T['input'].shape)} does not match the spec's input {spec['input']}")
        return rep
    n = T["input"].shape[0]
    if "labels" not in T or list(T["labels"].shape) != [n]:
        rep.fail("labels", "missing or not [N]")
        return rep
    # Parameters: present, right shapes.
    shape, params = spec["input"], {}
    for l in layers:
        for k, pshape in param_shapes(l, shape):
            if f"param.{k}" not in T:
                rep.fail(f"param.{k}", "required tensor missing")
            elif list(T[f"param.{k}"].shape) != pshape:
                rep.fail(f"param.{k}", f"shape {list(T[f'param.{k}'].shape)}, spec gives {pshape}")
            else:
                params[k] = T[f"param.{k}"]
        if l["type"] == "dropout" and mode == "training" and f"mask.{l['name']}" not in T:
            rep.fail(f"mask.{l['name']}", "required tensor missing")
        shape = output_shape(l, shape)
    if rep.failures:
        return rep

    # Forward, layer by layer from the recorded input of each layer (recomputed where absent).
    h = T["input"].double()
    fin = {}
    for l in layers:
        name = l["name"]
        fin[name] = h
        lp = {k: params[k] for k, _ in param_shapes(l, list(h.shape[1:]))
              if k in params} if l["type"] in ("conv", "linear") else {}
        try:
            y, _ = recompute_layer(l, h, lp, T.get(f"mask.{name}"), towers, mode, None)
        except RuntimeError as e:
            rep.fail(f"forward.{name}", f"cannot recompute: {str(e).splitlines()[0]}")
            return rep
        rec = T.get(f"forward.{name}")
        if rec is not None:
            rep.close(f"forward.{name}", rec, y, tol)
            h = rec.double() if tuple(rec.shape) == tuple(y.shape) else y
        else:
            h = y
    scores = h
    # Loss and its gradient from the recorded (or recomputed) scores.
    s = scores.clone().requires_grad_(True)
    loss = F.cross_entropy(s, T["labels"], reduction="mean")
    loss.backward()
    if "loss" in T:
        if T["loss"].numel() != 1 or list(T["loss"].shape) not in ([], [1]):
            rep.fail("loss", f"shape {list(T['loss'].shape)}, expected [] or [1]")
        else:
            rep.close("loss", T["loss"].reshape([]), loss.detach(), tol)
    if "grad.scores" in T:
        rep.close("grad.scores", T["grad.scores"], s.grad, tol)
    # Backward, last layer first, each from the recorded gradient of its output.
    g = T["grad.scores"].double() if "grad.scores" in T else s.grad
    for l in reversed(layers):
        name = l["name"]
        lp = {k: params[k] for k, _ in param_shapes(l, list(fin[name].shape[1:])) if k in params} \
            if l["type"] in ("conv", "linear") else {}
        y, grads = recompute_layer(l, fin[name], lp, T.get(f"mask.{name}"), towers, mode, g)
        if not grads:
            rep.fail(f"grad_input.{name}", f"the output gradient's shape {list(g.shape)} does not fit the "
                                           f"layer's output {list(y.shape)}")
            return rep
        for k in lp:
            if f"grad.{k}" in T:
                rep.close(f"grad.{k}", T[f"grad.{k}"], grads[k], tol)
        rec = T.get(f"grad_input.{name}")
        if rec is not None:
            rep.close(f"grad_input.{name}", rec, grads["input"], tol)
            g = rec.double() if tuple(rec.shape) == tuple(grads["input"].shape) else grads["input"]
        else:
            g = grads["input"]
    # SGD: bitwise, from the recorded param and grad, in the trace's dtype.
    if any(k.startswith("updated.") for k in T) and "sgd_form" in meta:
        for k in params:
            if f"updated.{k}" not in T:
                continue
            if f"grad.{k}" not in T:
                rep.fail(f"updated.{k}", "present without grad.* to check it against")
                continue
            want = sgd_step(T[f"param.{k}"], T[f"grad.{k}"], meta["sgd_form"], float(meta["learning_rate"]),
                            float(meta["momentum"]), float(meta["weight_decay"]))
            rep.checked += 1
            if not torch.equal(want, T[f"updated.{k}"]):
                rep.fail(f"updated.{k}", "differs from the documented SGD step of param and grad")
    # Per-tower tensors: exact slices of the grouped ones.
    tower_keys = [k for k in T if k.startswith("tower")]
    if tower_keys:
        if meta.get("towers") != "2":
            rep.fail("metadata", "tower tensors present but towers != 2")
        for k in tower_keys:
            t, rest = k.split(".", 1)
            t = int(t[len("tower"):])
            kind = rest.split(".", 1)[0]
            if rest not in T:
                continue
            dim = 0 if kind in ("param", "grad", "updated") else 1
            rep.checked += 1
            if not torch.equal(T[k], T[rest].chunk(2, dim=dim)[t]):
                rep.fail(k, f"is not tower {t}'s half of {rest}")
    return rep


# ---------------------------------------------------------------------------
# The committed fixtures
# ---------------------------------------------------------------------------

# Network fixtures: weights N(0, 1/fan_in) ("fan-in"), not the paper's N(0, 0.01):
# with the narrow widths, 0.01 makes the signal vanish by conv4, so the bias 1
# dominates, maps become nearly constant and hundreds of max-pool windows hold
# values within 1e-6 of each other; a float32 implementation would then pick
# other maxima than PyTorch did. The input scale makes LRN matter (it changes
# paper-narrow's lrn1 outputs by up to 8%), and each seed is the one of 0..39 that keeps every
# max-pool window's top two values and every ReLU input furthest apart (see
# fragility(); --all prints it), so rounding cannot flip a maximum or a ReLU.
NET_INPUT_STD = 10.0
FIXTURE_SETTINGS = {
    "paper-narrow": dict(init="fan-in", input_std=10.0, seed=32),
    "mini-towers": dict(init="fan-in", input_std=10.0, seed=10),
    "layers-18pct": dict(init="fan-in", input_std=5.0, seed=21),
}


def layer_fixtures():
    """(file stem, layer dict, input shape, options) for every layer fixture."""
    conv = lambda **kw: {"name": "conv", "type": "conv", "groups": 1, "bias": 0.0, **kw}
    lrn = lambda **kw: {"name": "lrn", "type": "lrn", **kw}
    maxpool = lambda **kw: {"name": "pool", "type": "maxpool", **kw}
    avgpool = lambda **kw: {"name": "pool", "type": "avgpool", **kw}
    return [
        ("conv-grouped", conv(outputs=6, kernel=[3, 5], stride=2, padding=1, groups=2), [2, 4, 9, 11], {}),
        ("conv-nobias-rect-stride-pad", conv(outputs=5, kernel=[5, 3], stride=[1, 2], padding=[2, 1], bias=False),
         [2, 3, 7, 8], {}),
        ("conv-11x11-stride4", conv(outputs=4, kernel=11, stride=4, padding=0), [2, 3, 31, 31], {"input_std": 50.0}),
        ("linear-4d", {"name": "fc", "type": "linear", "outputs": 7, "bias": 0.0}, [2, 3, 4, 5], {}),
        ("lrn-paper-c6", lrn(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper"), [2, 6, 3, 4],
         {"input_std": 30.0}),
        ("lrn-paper-c3", lrn(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper"), [2, 3, 3, 4],
         {"input_std": 30.0}),
        ("lrn-caffe-c4", lrn(size=5, alpha=1e-4, beta=0.75, k=1.0, convention="caffe"), [2, 4, 3, 4],
         {"input_std": 60.0}),
        ("lrn-pytorch-even", lrn(size=4, alpha=1e-3, beta=0.6, k=1.0, convention="pytorch"), [2, 5, 3, 4],
         {"input_std": 20.0}),
        ("maxpool-floor", maxpool(kernel=3, stride=2, padding=0, rounding="floor"), [2, 3, 10, 8], {}),
        ("maxpool-ceil", maxpool(kernel=3, stride=2, padding=0, rounding="ceil"), [2, 3, 10, 8], {}),
        ("maxpool-ceil-pad", maxpool(kernel=3, stride=2, padding=1, rounding="ceil"), [2, 3, 10, 8], {}),
        ("maxpool-ties", maxpool(kernel=3, stride=2, padding=0, rounding="floor"), [2, 2, 7, 7],
         {"input_kind": "integers"}),
        ("avgpool-ceil-exclude-pad", avgpool(kernel=3, stride=2, padding=1, rounding="ceil",
                                             count_include_padding=False), [2, 3, 10, 8], {}),
        ("avgpool-ceil-include-pad", avgpool(kernel=3, stride=2, padding=1, rounding="ceil",
                                             count_include_padding=True), [2, 3, 10, 8], {}),
        ("avgpool-ceil-drop", avgpool(kernel=3, stride=3, padding=1, rounding="ceil", count_include_padding=False),
         [2, 2, 5, 7], {}),
        ("relu", {"name": "relu", "type": "relu"}, [2, 3, 4, 5], {"zeros": 6}),
        ("tanh", {"name": "tanh", "type": "tanh"}, [2, 3, 4, 5], {}),
        ("dropout-paper", {"name": "drop", "type": "dropout", "rate": 0.5, "scaling": "paper"}, [2, 3, 4, 5], {}),
        ("dropout-inverted", {"name": "drop", "type": "dropout", "rate": 0.3, "scaling": "inverted"}, [2, 16], {}),
        ("dropout-paper-inference", {"name": "drop", "type": "dropout", "rate": 0.5, "scaling": "paper"}, [2, 16],
         {"mode": "inference"}),
    ]


def fixtures(root):
    """[(path, kind, builder arguments, writer, omitted patterns)] for everything committed under `root`.

    The 227x227 batch-2 input alone is 2.5 MB in float64, so some traces leave
    out tensors that another trace already holds (see README.md)."""
    narrow = os.path.join(HERE, "paper-narrow.json")
    mini = os.path.join(HERE, "mini-towers.json")
    cifar = os.path.join(HERE, "..", "models", "layers-18pct.json")
    net = lambda name: os.path.join(root, "net", name)
    pn = dict(spec=narrow, **FIXTURE_SETTINGS["paper-narrow"])
    mt = dict(spec=mini, **FIXTURE_SETTINGS["mini-towers"])
    out = [
        (net("paper-narrow-f64-sgd-paper.safetensors"), "network", dict(pn, dtype="f64", sgd="paper"), "st",
         ["grad_input.conv1"]),
        (net("paper-narrow-f64-sgd-pytorch.safetensors"), "network", dict(pn, dtype="f64", sgd="pytorch"), "st",
         ["forward.*", "grad_input.*"]),
        (net("paper-narrow-f32-sgd-paper-towers.safetensors"), "network",
         dict(pn, dtype="f32", sgd="paper", towers_tensors=True), "st", ["grad_input.conv1"]),
        (net("layers-18pct-f64-sgd-paper.safetensors"), "network",
         dict(spec=cifar, dtype="f64", sgd="paper", **FIXTURE_SETTINGS["layers-18pct"]), "st",
         ["grad_input.*", "updated.*"]),
        (net("mini-towers-f64-sgd-paper-towers.safetensors"), "network",
         dict(mt, dtype="f64", sgd="paper", towers_tensors=True), "st", []),
        (os.path.join(root, "npy", "mini-towers-f32-sgd-pytorch"), "network", dict(mt, dtype="f32", sgd="pytorch"),
         "npy", []),
    ]
    for stem, layer, shape, opts in layer_fixtures():
        for dt in ("f64", "f32"):
            out.append((os.path.join(root, "layers", f"{stem}-{dt}.safetensors"), "layer",
                        dict(layer=layer, input_shape=shape, dtype=dt, **opts), "st", []))
    for what in ("lrn-alpha", "conv3-swap", "pool-ceil"):
        out.append((os.path.join(root, "broken", f"mini-towers-{what}-f64.safetensors"), "network",
                    dict(mt, dtype="f64", sgd="paper", broken_what=what), "st", ["grad_input.conv1", "updated.*"]))
    steps = os.path.join(HERE, "steps", "tiny-steps.json")
    schedule = dict(steps=5, lrs=STEPS_SCHEDULE, batch=2, seed=3, init="fan-in", input_std=10.0)
    for dt, form in (("f64", "pytorch"), ("f32", "paper")):
        out.append((os.path.join(root, "steps", f"tiny-steps-5-{dt}-sgd-{form}.safetensors"), "steps",
                    dict(spec=steps, dtype=dt, sgd=form, **schedule), "st", []))
    floor_pool = next(l for stem, l, _, _ in layer_fixtures() if stem == "maxpool-floor")
    out.append((os.path.join(root, "broken", "maxpool-floor-computed-ceil-f64.safetensors"), "layer",
                dict(layer=floor_pool, input_shape=[2, 3, 10, 8], dtype="f64", broken_what="pool-ceil"), "st", []))
    return out


# The tensor at which each broken fixture must first fail the self-check.
BROKEN_EXPECTED = {
    "mini-towers-lrn-alpha-f64.safetensors": "forward.lrn1",
    "mini-towers-conv3-swap-f64.safetensors": "forward.conv3",
    "mini-towers-pool-ceil-f64.safetensors": "forward.pool1",
    "maxpool-floor-computed-ceil-f64.safetensors": "forward.pool",
}


def fragility(T, spec):
    """(smallest relative gap between the two largest values of a max-pool window,
    smallest |nonzero ReLU input| / max |ReLU input|) over the recorded forward pass:
    how far float32 rounding is from flipping a maximum or a ReLU."""
    prev, gap, near0 = T["input"], math.inf, math.inf
    for l in spec["layers"]:
        y = T.get(f"forward.{l['name']}")
        if y is None:
            return None
        x = prev.double()
        if l["type"] == "maxpool":
            k, st, p = pair(l["kernel"]), pair(l["stride"]), pair(l["padding"])
            oh, ow = y.shape[2], y.shape[3]
            # -inf padding, enough on the bottom/right for ceil windows; then the [oh, ow] windows.
            xp = F.pad(x, (p[1], p[1] + k[1], p[0], p[0] + k[0]), value=-math.inf)
            gh = (xp.shape[2] - k[0]) // st[0] + 1
            gw = (xp.shape[3] - k[1]) // st[1] + 1
            cols = F.unfold(xp.flatten(0, 1).unsqueeze(1), k, stride=st).view(-1, k[0] * k[1], gh, gw)
            cols = cols[:, :, :oh, :ow].flatten(2)
            top = cols.topk(2, dim=1).values
            ok = torch.isfinite(top).all(1) & (top[:, 0] != 0)
            if ok.any():
                gap = min(gap, float(((top[:, 0] - top[:, 1]).abs() / top[:, 0].abs())[ok].min()))
        if l["type"] == "relu" and bool((x != 0).any()):
            near0 = min(near0, float(x[x != 0].abs().min() / x.abs().max()))
        prev = y
    return gap, near0


# The learning rate of each step of the version 2 fixtures: it changes at step 2, where the
# two SGD forms part end to end (Docs/conventions.md).
STEPS_SCHEDULE = (0.02, 0.01, 0.01, 0.005, 0.0025)


def build(kind, kwargs, device):
    kwargs = dict(kwargs)
    if kind == "steps":
        return steps_trace(load_spec(kwargs.pop("spec")), device=device, **kwargs)
    if kind == "network":
        spec = kwargs.pop("spec")
        return network_trace(load_spec(spec) if isinstance(spec, str) else spec, device=device, **kwargs)
    return layer_trace(kwargs.pop("layer"), kwargs.pop("input_shape"), device=device, **kwargs)


def write(path, writer, T, meta):
    if writer == "npy":
        write_npy_dir(path, T, meta)
    else:
        write_safetensors(path, T, meta)


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def find_traces(paths):
    found = []
    for p in paths:
        if os.path.isdir(p) and not os.path.exists(os.path.join(p, "metadata.json")):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                if "metadata.json" in filenames:
                    found.append(dirpath)
                    dirnames[:] = []
                    continue
                found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".safetensors")]
        else:
            found.append(p)
    return found


def self_check(paths):
    ok = True
    for path in find_traces(paths):
        rep = self_check_trace(path)
        base = os.path.basename(path.rstrip("/"))
        rel = os.path.relpath(path)
        expected = BROKEN_EXPECTED.get(base) if os.sep + "broken" + os.sep in os.path.abspath(path) else None
        if expected is not None:
            if rep.failures and rep.failures[0][0] == expected:
                print(f"ok    {rel}: fails as intended, first at {expected} ({rep.failures[0][1]})")
            else:
                ok = False
                got = rep.failures[0] if rep.failures else "no failure"
                print(f"FAIL  {rel}: should first fail at {expected}, got {got}")
        elif rep.failures:
            ok = False
            print(f"FAIL  {rel}: {len(rep.failures)} problem(s)")
            for name, msg in rep.failures[:10]:
                print(f"        {name}: {msg}")
        else:
            print(f"ok    {rel}: {rep.checked} tensors consistent")
    return ok


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the top of this file and README.md for what each option records.")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--spec", help="model spec JSON (Docs/models.md): a network trace")
    what.add_argument("--layer", help="one layer as JSON (an entry of a spec's layers): a layer trace")
    what.add_argument("--all", action="store_true", help="(re)write every committed fixture under --out-root")
    what.add_argument("--self-check", nargs="*", metavar="TRACE",
                      help="recompute traces (files, .npy directories, or folders of them; default: this "
                           "folder) in float64 and check them")
    ap.add_argument("--out", help="write one safetensors file here")
    ap.add_argument("--npy-dir", help="write a directory of .npy files plus metadata.json here")
    ap.add_argument("--out-root", default=HERE, help="with --all: where the fixture tree goes (default: this folder)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f64", help="element type (default f64)")
    ap.add_argument("--sgd", choices=["paper", "pytorch"], default="paper",
                    help="SGD form of updated.* (default paper; Docs/conventions.md)")
    ap.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    ap.add_argument("--momentum", type=float, default=0.9, help="(default 0.9)")
    ap.add_argument("--weight-decay", type=float, default=0.0005, help="(default 0.0005)")
    ap.add_argument("--batch", type=int, default=2, help="network: images in the batch (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seeds every draw (input, labels, weights, masks)")
    ap.add_argument("--init", choices=["paper", "fan-in"], default="paper",
                    help="weights N(0, 0.01^2) (paper, default) or N(0, 1/fan_in) (fan-in; the committed fixtures)")
    ap.add_argument("--input-std", type=float, default=None,
                    help=f"standard deviation of the input (default: {NET_INPUT_STD} network, 1 layer)")
    ap.add_argument("--input", help="network: replace the spec's input shape, C,H,W")
    ap.add_argument("--input-shape", help="layer: the input's shape, e.g. 2,4,9,11")
    ap.add_argument("--mode", choices=["training", "inference"], default="training",
                    help="training (default: masks drawn and recorded, SGD step) or inference (test-time "
                         "dropout, no masks, no updated.*)")
    ap.add_argument("--towers-tensors", action="store_true", help="add tower<t>.* tensors (a towers-2 spec)")
    ap.add_argument("--break", dest="broken", metavar="WHAT",
                    help="deliberately wrong reference: lrn-alpha, conv3-swap, pool-ceil[:LAYER]")
    ap.add_argument("--omit", action="append", default=[], metavar="PATTERN",
                    help="leave out tensors matching this fnmatch pattern (repeatable)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--tolerance-scale", type=float, default=1.0,
                    help="--self-check: multiply its bounds (e.g. 10 for float32 traces from a GPU)")
    args = ap.parse_args(argv)

    # One thread: PyTorch's CPU convolution weight gradients change in the last
    # bits with the thread count, and the fixtures should regenerate bit for bit.
    torch.set_num_threads(1)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)

    if args.self_check is not None:
        global TOLERANCE_SCALE
        TOLERANCE_SCALE = args.tolerance_scale
        return 0 if self_check(args.self_check or [HERE]) else 1
    if args.all and args.device != "cpu" and os.path.abspath(args.out_root) == HERE:
        ap.error("--all on a GPU needs --out-root DIR: the committed fixtures are the CPU ones")

    if args.all:
        total = 0
        for path, kind, kwargs, writer, omit in fixtures(args.out_root):
            T, meta = build(kind, kwargs, args.device)
            write(path, writer, apply_omit(T, omit), meta)
            size = size_of(path)
            total += size
            note = ""
            if kind == "network" and "format" in meta and meta["format"] == FORMAT:
                fr = fragility(T, normalise_spec(json.loads(meta["spec"])))
                if fr is not None:
                    note = f"  (max-pool gap {fr[0]:.1e}, ReLU margin {fr[1]:.1e})"
            print(f"{size:>10,}  {os.path.relpath(path)}{note}")
        print(f"{total:>10,}  total")
        return 0

    if not args.out and not args.npy_dir:
        ap.error("give --out FILE.safetensors and/or --npy-dir DIR")
    if args.spec:
        spec = load_spec(args.spec)
        if args.input:
            spec["input"] = [int(v) for v in args.input.split(",")]
        T, meta = network_trace(spec, dtype=args.dtype, sgd=args.sgd, lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, batch=args.batch, seed=args.seed,
                                input_std=NET_INPUT_STD if args.input_std is None else args.input_std,
                                mode=args.mode, towers_tensors=args.towers_tensors, broken_what=args.broken,
                                device=args.device, init=args.init)
    else:
        if not args.input_shape:
            ap.error("--layer needs --input-shape N,C,H,W (or N,F)")
        T, meta = layer_trace(json.loads(args.layer), [int(v) for v in args.input_shape.split(",")],
                              dtype=args.dtype, seed=args.seed,
                              input_std=1.0 if args.input_std is None else args.input_std, mode=args.mode,
                              device=args.device, broken_what=args.broken)
    apply_omit(T, args.omit)
    if args.out:
        write_safetensors(args.out, T, meta)
    if args.npy_dir:
        write_npy_dir(args.npy_dir, T, meta)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, KeyError, OSError) as error:
        print(f"make_traces.py: error: {error}", file=sys.stderr)
        sys.exit(2)
