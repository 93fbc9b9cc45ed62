"""Writes PyTorch state dicts as a PyTorch user would, for the weights-loading tests.

Builds cuda-convnet's layers-80sec (Fixtures/models/layers-80sec.json) as a
paper-style PyTorch model: two nn.Sequential, `features` up to the last pooling
layer and `classifier` after it, in the spec's layer order, so the state-dict
keys are `features.0.weight`, ..., `classifier.2.bias`. Weights come from
torch.manual_seed(0) (PyTorch's default initialisation).

Writes, next to this script:
  layers-80sec-pytorch.safetensors  safetensors.torch.save_file(model.state_dict())
  layers-80sec-pytorch.npz          numpy.savez of the same tensors

Run: pip install "torch==2.13.0+cpu" numpy safetensors; python3 make_pytorch_state_dicts.py
The Swift test (StateDictPyTorchTests) loads both into the `layers-80sec` model
and compares a few values written below as literals.
"""
import os

import numpy as np
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
features = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 5, padding=2),            # 0 conv1
    torch.nn.MaxPool2d(3, 2, ceil_mode=True),        # 1 pool1
    torch.nn.ReLU(),                                 # 2 relu1
    torch.nn.Conv2d(32, 32, 5, padding=2),           # 3 conv2
    torch.nn.ReLU(),                                 # 4 relu2
    torch.nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False),  # 5 pool2
    torch.nn.Conv2d(32, 64, 5, padding=2),           # 6 conv3
    torch.nn.ReLU(),                                 # 7 relu3
    torch.nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False),  # 8 pool3
)
classifier = torch.nn.Sequential(
    torch.nn.Linear(64 * 4 * 4, 64),                 # 0 fc64
    torch.nn.ReLU(),                                 # 1 relu4
    torch.nn.Linear(64, 10),                         # 2 fc10
)
model = torch.nn.Module()
model.features = features
model.classifier = classifier
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, os.path.join(here, "layers-80sec-pytorch.safetensors"))
np.savez(os.path.join(here, "layers-80sec-pytorch.npz"), **{k: v.numpy() for k, v in state.items()})
for key in ["features.0.weight", "features.6.bias", "classifier.2.weight"]:
    flat = state[key].flatten()
    print(key, list(state[key].shape), repr(float(flat[0])), repr(float(flat[-1])))
