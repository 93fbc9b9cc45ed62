"""Model specs (Docs/models.md): reading, defaults, shapes and the canonical text.

The canonical text is byte-identical to `alexnet summary --model X --json`; it is
what a trace's `spec` metadata holds. The rules follow
Fixtures/oracle/make_traces.py, which made the committed PyTorch fixtures.
"""
import json
import math
import os

__all__ = ["load_spec", "normalise_spec", "spec_json", "layer_json", "output_shape", "param_shapes",
           "layer_shapes", "pair"]

LAYER_KEYS = {
    "conv": ["name", "type", "outputs", "kernel", "stride", "padding", "groups", "bias"],
    "maxpool": ["name", "type", "kernel", "stride", "padding", "rounding"],
    "avgpool": ["name", "type", "kernel", "stride", "padding", "rounding", "count_include_padding"],
    "lrn": ["name", "type", "size", "alpha", "beta", "k", "convention"],
    "relu": ["name", "type"],
    "tanh": ["name", "type"],
    "linear": ["name", "type", "outputs", "bias"],
    "dropout": ["name", "type", "rate", "scaling"],
}
DEFAULTS = {
    "conv": {"stride": 1, "padding": 0, "groups": 1, "bias": 0.0},
    "maxpool": {"padding": 0},
    "avgpool": {"padding": 0},
    "linear": {"bias": 0.0},
}


def pair(v):
    """`3` or `[3, 5]` -> `(3, 3)` or `(3, 5)` (height, width)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"expected an integer or [height, width], got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def normalise_layer(layer):
    """One layer dict with every key of its type, defaults filled in, in the writer's key order."""
    t = layer.get("type")
    if t not in LAYER_KEYS:
        raise ValueError(f"layer {layer.get('name')!r}: unknown type {t!r}")
    unknown = set(layer) - set(LAYER_KEYS[t])
    if unknown:
        raise ValueError(f"layer {layer.get('name')!r}: unknown keys {sorted(unknown)}")
    out = dict(DEFAULTS.get(t, {}))
    out.update(layer)
    missing = [k for k in LAYER_KEYS[t] if k not in out]
    if missing:
        raise ValueError(f"layer {layer.get('name')!r}: missing {missing}")
    return {k: out[k] for k in LAYER_KEYS[t]}


def normalise_spec(spec):
    """A spec dict with `name`, `input` [C, H, W], `towers` (1 or 2) and normalised `layers`."""
    s = {"name": spec["name"], "input": [int(v) for v in spec["input"]], "towers": int(spec.get("towers", 1)),
         "layers": [normalise_layer(l) for l in spec["layers"]]}
    if s["towers"] not in (1, 2):
        raise ValueError(f"towers must be 1 or 2, got {s['towers']}")
    names = [l["name"] for l in s["layers"]]
    if len(set(names)) != len(names):
        raise ValueError("layer names must be unique")
    return s


def load_spec(spec):
    """A normalised spec from a path to a JSON file, a JSON text or a dict."""
    if isinstance(spec, dict):
        return normalise_spec(spec)
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec)
        if text.lstrip().startswith("{"):
            return normalise_spec(json.loads(text))
        with open(text, encoding="utf-8") as f:
            return normalise_spec(json.load(f))
    raise TypeError(f"a spec is a path, a JSON text or a dict, not {type(spec).__name__}")


def _num(x):
    """A JSON number as Swift's writer prints a Double (shortest round trip, always a fraction or exponent)."""
    return repr(float(x))


def _pair_text(v):
    h, w = pair(v)
    return str(h) if h == w else f"[{h}, {w}]"


def layer_json(layer):
    """One layer as the Swift writer writes it: every key, in its order, on one line."""
    l = normalise_layer(layer)
    parts = []
    for key in LAYER_KEYS[l["type"]]:
        v = l[key]
        if key in ("name", "type", "rounding", "convention", "scaling"):
            text = json.dumps(v, ensure_ascii=False)
        elif key in ("kernel", "stride", "padding"):
            text = _pair_text(v)
        elif key in ("outputs", "groups", "size"):
            text = str(int(v))
        elif key == "bias":
            text = "false" if v is False else _num(v)
        elif key == "count_include_padding":
            text = "true" if v else "false"
        else:  # alpha, beta, k, rate
            text = _num(v)
        parts.append(f'"{key}": {text}')
    return "{" + ", ".join(parts) + "}"


def spec_json(spec):
    """The spec's canonical text (byte-identical to `alexnet summary --model X --json`)."""
    s = load_spec(spec)
    c, h, w = s["input"]
    lines = ["{", f'  "name": {json.dumps(s["name"], ensure_ascii=False)},', f'  "input": [{c}, {h}, {w}],',
             f'  "towers": {s["towers"]},', '  "layers": [']
    for i, l in enumerate(s["layers"]):
        lines.append("    " + layer_json(l) + ("," if i + 1 < len(s["layers"]) else ""))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def pool_size(n, k, s, p, ceil):
    """Pooled extent, PyTorch's and Caffe's rule (ceil drops a last window starting in the padding)."""
    if ceil:
        out = -(-(n + 2 * p - k) // s) + 1
        if (out - 1) * s >= n + p:
            out -= 1
    else:
        out = (n + 2 * p - k) // s + 1
    return out


def output_shape(layer, shape):
    """Per-image output shape of `layer` for the per-image input `shape` (a list)."""
    t = layer["type"]
    if t == "conv":
        (kh, kw), (sh, sw), (ph, pw) = pair(layer["kernel"]), pair(layer["stride"]), pair(layer["padding"])
        return [layer["outputs"], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1]
    if t in ("maxpool", "avgpool"):
        (kh, kw), (sh, sw), (ph, pw) = pair(layer["kernel"]), pair(layer["stride"]), pair(layer["padding"])
        ceil = layer["rounding"] == "ceil"
        return [shape[0], pool_size(shape[1], kh, sh, ph, ceil), pool_size(shape[2], kw, sw, pw, ceil)]
    if t == "linear":
        return [layer["outputs"]]
    return list(shape)


def layer_shapes(spec):
    """[(layer, per-image input shape, per-image output shape)] in layer order."""
    s = load_spec(spec)
    out, shape = [], list(s["input"])
    for l in s["layers"]:
        nxt = output_shape(l, shape)
        out.append((l, shape, nxt))
        shape = nxt
    return out


def param_shapes(layer, in_shape):
    """[(parameter name, shape)] of a layer for the per-image input shape `in_shape`."""
    t, n = layer["type"], layer["name"]
    if t == "conv":
        kh, kw = pair(layer["kernel"])
        out = [(f"{n}.weight", [layer["outputs"], in_shape[0] // layer["groups"], kh, kw])]
        if layer["bias"] is not False:
            out.append((f"{n}.bias", [layer["outputs"]]))
        return out
    if t == "linear":
        out = [(f"{n}.weight", [layer["outputs"], int(math.prod(in_shape))])]
        if layer["bias"] is not False:
            out.append((f"{n}.bias", [layer["outputs"]]))
        return out
    return []
