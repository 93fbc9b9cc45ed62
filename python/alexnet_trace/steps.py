"""Recording T training steps of a PyTorch model as an `alexnet-trace/2` file (Docs/oracle.md,
"Several steps (version 2)")."""
import torch

from .record import _DTYPES, _checked_model, _device_text, _prepared, _resolve, _step, _tf32, sgd_step, write_trace
from .spec import load_spec, spec_json

__all__ = ["record_steps", "FORMAT_STEPS"]

FORMAT_STEPS = "alexnet-trace/2"


def record_steps(model, spec, batches, path=None, *, sgd_form="paper", lr=0.01, momentum=0.9, weight_decay=0.0005,
                 layer_map=None, tf32=None, producer=None, grad_input=False):
    """Run T training steps of `model`, one per `(images, labels)` of `batches`, and record
    them as a version 2 trace that `alexnet check` replays step by step.

    Each step is `record_step`'s (the same hooks, module rules, dtype, device and TF32
    handling), followed by one SGD step in `sgd_form` with the velocity carried from the
    step before (zero before the first), computed by `sgd_step` in the trace's dtype on
    the CPU and written into the model's parameters for the next step. `lr` is one rate
    for every step or a list of T rates (the schedule; metadata `learning_rates`).

    Recorded: `param.*` once (before step 1), then for t = 1..T under `step<t>.`:
    `input`, `labels`, `mask.*` (each step's own dropout masks), `forward.*`, `loss`,
    `grad.scores`, `grad.*`, `grad_input.*` (with `grad_input=True`), `updated.*` (the
    parameters after the step) and `velocity.*` (the velocity after it, in `sgd_form`).
    Metadata: `format` = `alexnet-trace/2`, `steps` = T, `learning_rates` (T numbers),
    `learning_rate` (the first), the other SGD settings, and `record_step`'s keys.

    The model is left as it was (parameters, `.grad`, train/eval mode). Writes `path`
    when given; returns `(tensors, metadata)` either way.
    """
    spec = load_spec(spec if spec is not None else getattr(model, "spec", None))
    batches = list(batches)
    if not batches:
        raise ValueError("record_steps needs at least one (images, labels) batch")
    rates = [float(r) for r in lr] if isinstance(lr, (list, tuple)) else [float(lr)] * len(batches)
    if len(rates) != len(batches):
        raise ValueError(f"{len(rates)} learning rates for {len(batches)} steps: give one per step")
    dtype, device = _checked_model(model, sgd_form)
    modules = _resolve(model, spec, layer_map)
    saved = [(p, p.detach().clone()) for p in model.parameters()]
    T, velocity = {}, {}
    try:
        with _prepared(model, spec, modules, "training", layer_map), _tf32(tf32):
            tf32_state = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            for t, (images, labels) in enumerate(batches, 1):
                S = _step(model, spec, modules, images, labels, dtype, device, "training", grad_input)
                names = [k[len("param."):] for k in S if k.startswith("param.")]
                for k, x in S.items():
                    if k.startswith("param."):
                        if t == 1:
                            T[k] = x
                    else:
                        T[f"step{t}.{k}"] = x
                for name in names:
                    w, v = sgd_step(S[f"param.{name}"], S[f"grad.{name}"], sgd_form, rates[t - 1], momentum,
                                    weight_decay, velocity.get(name))
                    T[f"step{t}.updated.{name}"], T[f"step{t}.velocity.{name}"] = w, v
                    velocity[name] = v
                    layer, attribute = name.rsplit(".", 1)
                    with torch.no_grad():
                        getattr(modules[layer], attribute).copy_(w.to(device))
    finally:
        with torch.no_grad():
            for p, value in saved:
                p.copy_(value)
    on = lambda b: "on" if b else "off"
    tf32_text = (f"TF32 {on(any(tf32_state))} (matmul {on(tf32_state[0])}, cudnn {on(tf32_state[1])})"
                 if device.type == "cuda" else "TF32 n/a on cpu")
    text = f"pytorch {torch.__version__} on {_device_text(device)}; {tf32_text}; alexnet_trace"
    meta = {"format": FORMAT_STEPS, "kind": "network", "spec": spec_json(spec), "dtype": _DTYPES[dtype],
            "mode": "training", "producer": f"{producer}; {text}" if producer else text,
            "tf32": on(any(tf32_state)) if device.type == "cuda" else "n/a",
            "sgd_form": sgd_form, "learning_rate": repr(rates[0]), "momentum": repr(float(momentum)),
            "weight_decay": repr(float(weight_decay)), "steps": str(len(batches)),
            "learning_rates": ",".join(repr(r) for r in rates)}
    if path is not None:
        write_trace(path, T, meta)
    return T, meta
