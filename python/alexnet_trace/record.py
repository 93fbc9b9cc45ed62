"""Recording one training step of a PyTorch model as an `alexnet-trace/1` file."""
import contextlib
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .modules import MaskDropout, _scalar
from .safetensors_io import write_safetensors
from .spec import layer_shapes, load_spec, param_shapes, spec_json

__all__ = ["TORCHVISION_LAYER_MAP", "record_step", "write_trace", "sgd_step", "plant_fault", "execution_order", "FORMAT"]

FORMAT = "alexnet-trace/1"
_DTYPES = {torch.float32: "f32", torch.float64: "f64"}

#: `layer_map` for torchvision's `alexnet()` (and any module with its `features.N` /
#: `classifier.N` structure) against the layer names of Fixtures/models/torchvision.json.
TORCHVISION_LAYER_MAP = dict(zip(
    ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4", "conv5", "relu5",
     "pool5", "drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8"],
    [f"features.{i}" for i in range(13)] + [f"classifier.{i}" for i in range(7)]))


def sgd_step(w, g, form, lr, momentum, weight_decay, v=None):
    """The parameter after one SGD step, one rounded operation at a time in `w`'s dtype
    (Docs/conventions.md, SGD; the order of Sources/AlexNetKit/Training/SGD.swift).

    paper:   `v = ((m * v) - (r * w)) - (lr * g); w' = w + v`, with `r = wd * lr` rounded once
    pytorch: `v = (m * v) + (g + (wd * w));       w' = w - (lr * v)`
    `v` is the velocity (zero, the trace format's first step, when None). Returns `(w', v')`.
    """
    v = torch.zeros_like(w) if v is None else v
    lr_t, mu_t = _scalar(lr, w), _scalar(momentum, w)
    if form == "paper":
        v = ((mu_t * v) - (_scalar(weight_decay * lr, w) * w)) - (lr_t * g)
        return w + v, v
    if form == "pytorch":
        v = (mu_t * v) + (g + (_scalar(weight_decay, w) * w))
        return w - (lr_t * v), v
    raise ValueError(f"sgd_form must be 'paper' or 'pytorch', got {form!r}")


def execution_order(names):
    """Tensor names in Docs/oracle.md's order, given in the order the step made them:
    each `tower<t>.` tensor right after its grouped tensor."""
    names = list(names)
    base = {n: n.split(".", 1)[1] if re.match(r"tower\d+\.", n) else n for n in names}
    first = {}
    for i, n in enumerate(names):
        first.setdefault(base[n], i)
    return sorted(names, key=lambda n: (first[base[n]], n != base[n], n))


def write_trace(path, tensors, metadata):
    """Write a trace as one safetensors file (tensors copied to the CPU, in execution order)."""
    ordered = {k: tensors[k].detach().to("cpu") for k in execution_order(tensors)}
    write_safetensors(path, ordered, metadata)


_FAULT = re.compile(r"^(?P<name>[^\[\]=]+)\[(?P<index>[0-9, ]+)\]=(?P<delta>.+)$")


def plant_fault(tensors, fault):
    """Add DELTA to one element of one recorded tensor, in place: `fault` is
    `NAME[IDX]=DELTA`, IDX a flat (row-major) index or a comma-separated multi-index,
    e.g. `forward.conv2[5]=0.5` or `forward.conv2[0,3,1,2]=-1e-3`. For testing that the
    oracle catches a wrong element. Returns the (name, flat index, old, new value)."""
    m = _FAULT.match(fault.strip())
    if not m:
        raise ValueError(f"a planted fault is NAME[IDX]=DELTA, e.g. forward.conv2[5]=0.5; got {fault!r}")
    name, delta = m["name"].strip(), float(m["delta"])
    if name not in tensors:
        raise ValueError(f"--plant-fault: the trace holds no tensor {name!r}")
    t = tensors[name] = tensors[name].detach().to("cpu").clone()
    index = [int(i) for i in m["index"].split(",")]
    if len(index) == 1:
        flat = index[0]
    else:
        if len(index) != t.dim() or any(not 0 <= i < n for i, n in zip(index, t.shape)):
            raise ValueError(f"--plant-fault: index {index} is outside {name}'s shape {list(t.shape)}")
        flat = 0
        for i, n in zip(index, t.shape):
            flat = flat * n + i
    if not 0 <= flat < t.numel():
        raise ValueError(f"--plant-fault: index {flat} is outside {name} ({t.numel()} elements)")
    view = t.view(-1)
    old = float(view[flat])
    view[flat] += delta
    return name, flat, old, float(view[flat])


def _resolve(model, spec, layer_map):
    """{spec layer name: module}."""
    layer_map = dict(layer_map or {})
    names = [l["name"] for l in spec["layers"]]
    unknown = sorted(set(layer_map) - set(names))
    if unknown:
        raise ValueError(f"layer_map names layers the spec does not have: {unknown}")
    found, seen = {}, {}
    for n in names:
        path = layer_map.get(n, n)
        try:
            m = model.get_submodule(path)
        except AttributeError:
            raise ValueError(f"spec layer {n!r}: the model has no module {path!r} (pass layer_map="
                             f"{{{n!r}: 'dotted.module.path'}})") from None
        if id(m) in seen:
            raise ValueError(f"spec layers {seen[id(m)]!r} and {n!r} map to the same module {path!r}")
        seen[id(m)] = n
        found[n] = m
    return found


@contextlib.contextmanager
def _prepared(model, spec, modules, mode, layer_map):
    """Swap nn.Dropout for MaskDropout, switch off in-place ops, set train/eval; undo on exit."""
    swaps, inplace, was_training = [], [], model.training
    try:
        for layer in spec["layers"]:
            m = modules[layer["name"]]
            if layer["type"] != "dropout" or isinstance(m, MaskDropout):
                continue
            if not isinstance(m, nn.Dropout):
                raise ValueError(f"dropout layer {layer['name']!r}: module {type(m).__name__} is neither "
                                 f"torch.nn.Dropout nor alexnet_trace.MaskDropout, so its mask cannot be recorded")
            if layer["scaling"] != "inverted":
                raise ValueError(f"dropout layer {layer['name']!r}: the spec says scaling {layer['scaling']!r}, "
                                 f"but torch.nn.Dropout scales inverted (x / (1 - p) in training)")
            if not math.isclose(m.p, float(layer["rate"]), rel_tol=0, abs_tol=1e-12):
                raise ValueError(f"dropout layer {layer['name']!r}: module p = {m.p}, the spec's rate {layer['rate']}")
            path = (layer_map or {}).get(layer["name"], layer["name"])
            parent_path, _, child = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            replacement = MaskDropout(m.p, "inverted")
            parent._modules[child] = replacement
            modules[layer["name"]] = replacement
            swaps.append((parent, child, m))
        mapped = {id(m) for m in modules.values()}
        for name, m in model.named_modules():
            if hasattr(m, "inplace") and getattr(m, "inplace") is True:
                m.inplace = False
                inplace.append(m)
            if (mode == "training" and isinstance(m, nn.modules.dropout._DropoutNd) and id(m) not in mapped
                    and m.p > 0):
                raise ValueError(f"module {name!r} is a dropout that no spec layer maps to: its random mask "
                                 f"would not be recorded (map it in layer_map or set its p to 0)")
        model.train(mode == "training")
        yield
    finally:
        for parent, child, original in reversed(swaps):
            parent._modules[child] = original
        for m in inplace:
            m.inplace = True
        model.train(was_training)


@contextlib.contextmanager
def _tf32(setting):
    cuda_matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (cuda_matmul.allow_tf32, cudnn.allow_tf32)
    try:
        if setting is not None:
            cuda_matmul.allow_tf32 = bool(setting)
            cudnn.allow_tf32 = bool(setting)
        yield
    finally:
        cuda_matmul.allow_tf32, cudnn.allow_tf32 = saved


def _device_text(device):
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _fit(t, shape):
    """`t` viewed as `shape` when it holds as many elements (a flattened input seen as the
    spec's [N, C, H, W]); else unchanged, so that the check reports the shape."""
    return t.reshape(shape) if t.numel() == math.prod(shape) and list(t.shape) != list(shape) else t


def record_step(model, spec, images, labels, path=None, *, sgd_form="paper", lr=0.01, momentum=0.9,
                weight_decay=0.0005, mode="training", layer_map=None, tf32=None, producer=None,
                grad_input=False, tower_tensors=False):
    """Run one training step of `model` on `images` and `labels` and record it as a trace
    (Docs/oracle.md, format `alexnet-trace/1`, kind `network`) that `alexnet check` verifies.

    `model`: any `torch.nn.Module` computing `spec` (a path, JSON text or dict; None
    takes `model.spec`, which `module_from_spec` sets). Each spec layer's module is
    found by its name (`model.get_submodule("conv1")`), or through
    `layer_map={spec layer name: "dotted.module.path"}` (torchvision's `alexnet()`:
    `{"conv1": "features.0", "relu1": "features.1", ..., "fc8": "classifier.6"}`);
    forward hooks on those modules record what each layer computed, so the modules
    must run once each, in the spec's order, and everything between them (a
    flatten, an identity `AdaptiveAvgPool2d`) must not change values. The step runs
    on the device of the model's parameters, in their dtype (float32 or float64: the
    trace's dtype); `images` ([N, C, H, W], the spec's input shape) and `labels` ([N]
    class indices) are moved there. Modules with `inplace=True` (ReLU) are switched
    out of place for the step. Dropout: a spec dropout layer's module is a
    `MaskDropout` (its mask is recorded) or a `torch.nn.Dropout`, which is swapped
    for the step for a `MaskDropout` with the same p and PyTorch's inverted scaling
    (the spec must say `"scaling": "inverted"`) and swapped back afterwards; any
    other active dropout module is an error (its mask could not be recorded).
    Functional dropout (`F.dropout` inside a forward) cannot be seen: avoid it.

    Recorded: `input`, `labels` (int64), `param.<layer>.weight/.bias` (before the
    step), `mask.<dropout layer>` (the 0/1 mask, training), `forward.<layer>`,
    `loss` (mean softmax cross-entropy, `F.cross_entropy`), `grad.scores`
    (dLoss/dScores), `grad.<param>`, `grad_input.<layer>` when `grad_input=True`
    (off by default: the first layer's is dLoss/dImage, as large as the batch), and
    `updated.<param>`: each parameter after one SGD step from zero velocity in
    `sgd_form` (`"paper"`: `v = m v - wd*lr*w - lr*g; w += v`; `"pytorch"`: `v = m v +
    (g + wd*w); w -= lr*v`), computed in the trace's dtype on the CPU. With
    `tower_tensors=True` (a two-tower spec) each tower's half is added as
    `tower<t>.*` (Docs/towers.md) and the metadata says `towers` = 2. Tensors with a
    flattened layout (torchvision's dropout and fc6 input) are stored in the spec's
    shape. `mode="inference"`: `model.eval()`, no masks, forward and loss only.

    `tf32`: True or False sets `torch.backends.cuda.matmul.allow_tf32` and
    `torch.backends.cudnn.allow_tf32` for the step (restored afterwards); None
    leaves them. The `producer` metadata says whether TF32 was on, with the torch
    version and the device; the given `producer` text comes first. Metadata: format,
    kind, spec (canonical JSON), dtype, mode, sgd_form, learning_rate, momentum,
    weight_decay, producer, tf32 (and towers).

    The model is left as it was: its parameters are not updated, its `.grad`
    fields and train/eval mode are restored, so the same model can be recorded
    again. Writes `path` (a `.safetensors` file) when given; returns
    `(tensors, metadata)` (CPU tensors, string metadata) either way.

    One step only: format version 1 holds one step from zero velocity. A later
    multi-step format (T steps with carried velocity) will add a `steps` argument
    to this function with today's behaviour as `steps=1`; the step itself is
    `_step`, which such a version calls T times.
    """
    spec = load_spec(spec if spec is not None else getattr(model, "spec", None))
    if mode not in ("training", "inference"):
        raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
    if tower_tensors and spec["towers"] != 2:
        raise ValueError('tower_tensors=True needs a spec with "towers": 2')
    dtype, device = _checked_model(model, sgd_form)
    modules = _resolve(model, spec, layer_map)
    with _prepared(model, spec, modules, mode, layer_map), _tf32(tf32):
        tf32_state = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        T = _step(model, spec, modules, images, labels, dtype, device, mode, grad_input)
    if mode == "training":
        for name in [k[len("param."):] for k in T if k.startswith("param.")]:
            T[f"updated.{name}"], _ = sgd_step(T[f"param.{name}"], T[f"grad.{name}"], sgd_form, lr, momentum,
                                               weight_decay)
    if tower_tensors:
        _add_tower_tensors(T, spec)
    on = lambda b: "on" if b else "off"
    tf32_text = (f"TF32 {on(any(tf32_state))} (matmul {on(tf32_state[0])}, cudnn {on(tf32_state[1])})"
                 if device.type == "cuda" else "TF32 n/a on cpu")
    text = f"pytorch {torch.__version__} on {_device_text(device)}; {tf32_text}; alexnet_trace"
    meta = {"format": FORMAT, "kind": "network", "spec": spec_json(spec), "dtype": _DTYPES[dtype], "mode": mode,
            "producer": f"{producer}; {text}" if producer else text,
            "tf32": on(any(tf32_state)) if device.type == "cuda" else "n/a"}
    if mode == "training":
        meta.update({"sgd_form": sgd_form, "learning_rate": repr(float(lr)), "momentum": repr(float(momentum)),
                     "weight_decay": repr(float(weight_decay))})
    if tower_tensors:
        meta["towers"] = "2"
    if path is not None:
        write_trace(path, T, meta)
    return T, meta


def _step(model, spec, modules, images, labels, dtype, device, mode, grad_input):
    """One forward and backward pass with hooks; the recorded tensors on the CPU, in step order."""
    n = images.shape[0]
    shapes = {l["name"]: ([n] + i, [n] + o) for l, i, o in layer_shapes(spec)}
    if list(images.shape) != [n] + spec["input"]:
        raise ValueError(f"images have shape {list(images.shape)}; the spec's input is [N] + {spec['input']}")
    x = images.detach().to(device=device, dtype=dtype).clone()
    y = torch.as_tensor(labels).detach().to(device=device, dtype=torch.int64).reshape(-1)
    if y.numel() != n:
        raise ValueError(f"{y.numel()} labels for {n} images")
    training = mode == "training"
    x.requires_grad_(training and grad_input)
    params = {}
    for layer, in_shape, _ in layer_shapes(spec):
        m = modules[layer["name"]]
        for name, shape in param_shapes(layer, in_shape):
            p = getattr(m, name.rsplit(".", 1)[1], None)
            if not isinstance(p, torch.Tensor):
                raise ValueError(f"layer {layer['name']!r}: module {type(m).__name__} has no {name.rsplit('.', 1)[1]}")
            if list(p.shape) != shape:
                raise ValueError(f"{name}: the module's shape {list(p.shape)}, the spec's {shape}")
            params[name] = p
        if layer["type"] in ("conv", "linear") and layer["bias"] is False and getattr(m, "bias", None) is not None:
            raise ValueError(f"layer {layer['name']!r}: the spec says bias false but the module has a bias")
    outputs, grads, order, handles = {}, {}, [], []

    def pre_hook(name):
        def hook(module, inputs):
            if name in outputs or name in order:
                raise RuntimeError(f"spec layer {name!r} ran twice in one forward pass")
            order.append(name)
            inp = inputs[0] if inputs else None
            if training and grad_input and isinstance(inp, torch.Tensor) and inp.requires_grad:
                inp.register_hook(lambda g: grads.__setitem__(name, g.detach().clone()))
        return hook

    def post_hook(name):
        def hook(module, inputs, output):
            outputs[name] = output.detach().clone()  # now: a later in-place op must not change it
        return hook

    saved_grads = {p: p.grad for p in model.parameters()}
    try:
        for name, m in modules.items():
            if isinstance(m, MaskDropout):
                m.mask = None
            handles.append(m.register_forward_pre_hook(pre_hook(name)))
            handles.append(m.register_forward_hook(post_hook(name)))
        for p in model.parameters():
            p.grad = None
        with torch.set_grad_enabled(training):
            scores = model(x)
            if training:
                scores.retain_grad()
            loss = F.cross_entropy(scores, y, reduction="mean")
            if training:
                loss.backward()
        names = [l["name"] for l in spec["layers"]]
        if order != names:
            missing = [k for k in names if k not in order]
            raise RuntimeError(f"the spec's layers ran as {order}" + (f"; never ran: {missing}" if missing else "")
                               + f"; the spec says {names}")
        T = {"input": images.detach().to(dtype=dtype), "labels": y}
        for k, p in params.items():
            T[f"param.{k}"] = p.detach()
        if training:
            for l in spec["layers"]:
                if l["type"] == "dropout":
                    mask = modules[l["name"]].mask
                    if mask is None:
                        raise RuntimeError(f"dropout layer {l['name']!r} drew no mask")
                    T[f"mask.{l['name']}"] = _fit(mask, shapes[l["name"]][0])
        for l in spec["layers"]:
            T[f"forward.{l['name']}"] = _fit(outputs[l["name"]], shapes[l["name"]][1])
        T["loss"] = loss.detach()
        if training:
            T["grad.scores"] = scores.grad
            for l in reversed(spec["layers"]):
                for k, p in params.items():
                    if k.rsplit(".", 1)[0] == l["name"]:
                        if p.grad is None:
                            raise RuntimeError(f"{k} got no gradient")
                        T[f"grad.{k}"] = p.grad.detach().clone()
                if grad_input:
                    if l["name"] == names[0]:
                        T[f"grad_input.{l['name']}"] = x.grad
                    elif l["name"] in grads:
                        T[f"grad_input.{l['name']}"] = _fit(grads[l["name"]], shapes[l["name"]][0])
        return {k: v.detach().to("cpu").clone() for k, v in T.items()}
    finally:
        for h in handles:
            h.remove()
        for p, g in saved_grads.items():
            p.grad = g


def _add_tower_tensors(T, spec):
    """tower<t>.* for each tower t: its half of each grouped tensor along dimension 1
    (activations) or 0 (parameters). A first layer both towers read whole (a groups-1
    convolution or a linear layer) has no per-tower input gradient halves: left out."""
    first = spec["layers"][0]
    shared = first["type"] == "linear" or (first["type"] == "conv" and first["groups"] % 2 != 0)
    for name in list(T):
        kind, _, rest = name.partition(".")
        if kind in ("forward", "grad_input") and not (kind == "grad_input" and rest == first["name"] and shared):
            for t, half in enumerate(T[name].chunk(2, dim=1)):
                T[f"tower{t}.{name}"] = half.clone()
        elif kind in ("param", "grad", "updated") and rest != "scores":
            for t, half in enumerate(T[name].chunk(2, dim=0)):
                T[f"tower{t}.{name}"] = half.clone()


def _checked_model(model, sgd_form):
    """The model's one float dtype and its device, after checking the SGD form's name."""
    if sgd_form not in ("paper", "pytorch"):
        raise ValueError(f"sgd_form must be 'paper' or 'pytorch', got {sgd_form!r}")
    floats = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if len(floats) != 1 or next(iter(floats)) not in _DTYPES:
        raise ValueError(f"the model's parameters must all be float32 or all float64, got {sorted(map(str, floats))}")
    return next(iter(floats)), next(model.parameters()).device
