"""alexnet_trace: record a PyTorch training step as a trace that `alexnet check` verifies.

    import torch, alexnet_trace as at
    model = at.module_from_spec("spec.json", seed=1)            # children named after the spec's layers
    images = torch.randn(2, *model.spec["input"]) * 10
    labels = torch.tensor([3, 7])
    at.record_step(model, None, images, labels, "trace.safetensors", lr=0.01)
    # then: alexnet check trace.safetensors

T steps with the velocity carried: `at.record_steps(model, None, [(images, labels), ...],
"steps.safetensors", lr=[0.02, 0.01, ...])` writes `alexnet-trace/2`.

The trace format is Docs/oracle.md's `alexnet-trace/1` (one step) or `/2` (several); the conventions are
Docs/conventions.md's. `python -m alexnet_trace --help` is the command line.
"""
from .modules import FlattenLinear, LocalResponseNorm, MaskDropout, SpecNet, layer_module, module_from_spec
from .record import FORMAT, TORCHVISION_LAYER_MAP, execution_order, plant_fault, record_step, sgd_step, write_trace
from .safetensors_io import read_safetensors, write_safetensors
from .steps import FORMAT_STEPS, record_steps
from .spec import load_spec, spec_json

__version__ = "0.1.0"

__all__ = ["module_from_spec", "record_step", "record_steps", "FORMAT_STEPS", "write_trace", "plant_fault", "sgd_step", "load_spec", "spec_json",
           "read_safetensors", "write_safetensors", "execution_order", "LocalResponseNorm", "MaskDropout",
           "FlattenLinear", "SpecNet", "layer_module", "FORMAT", "TORCHVISION_LAYER_MAP", "__version__"]
