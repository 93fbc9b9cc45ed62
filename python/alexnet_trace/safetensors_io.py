"""The safetensors format, written and read by hand (no `safetensors` package needed).

A file is an 8-byte little-endian header length, a JSON header (each tensor's
dtype, shape and data offsets, plus `__metadata__`, a map of strings), then the
raw little-endian bytes. The writer is deterministic: `__metadata__` first, then
the tensors in the order given, the header padded with spaces to 8 bytes.
"""
import json
import os

import numpy as np
import torch

__all__ = ["write_safetensors", "read_safetensors"]

_TO_ST = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.int64: "I64",
          torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
_TO_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors` (a dict name -> tensor, in the order to store them) and the string map
    `metadata` to `path`, atomically (a temporary file renamed into place)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.dtype not in _TO_ST:
            raise ValueError(f"{name}: dtype {t.dtype} is not written")
        array = t.numpy()
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            for data in blobs:
                f.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_safetensors(path):
    """(dict name -> CPU tensor in header order, metadata dict) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base, tensors = 8 + n, {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        array = np.frombuffer(raw[base + start:base + end], dtype=_TO_NP[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata
