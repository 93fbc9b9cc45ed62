#!/usr/bin/env python3
"""Fixtures for the .npy, .npz and safetensors readers, and a checker for what we write.

    python3 make_format_fixtures.py                 # (re)write the fixtures beside this script
    python3 make_format_fixtures.py --verify DIR    # check files the Swift writers put in DIR

Needs numpy and safetensors (`pip install numpy safetensors`).

Every value is stated literally below, and the same literals appear in the
Swift tests (Tests/AlexNetKitTests/FormatFixtures.swift), so a reader can check
both sides by eye. Files are tiny; the whole directory stays far below 200 KB.

--verify DIR expects the layout the Swift tests write when ALEXNET_FORMATS_OUT
is set (see Docs/formats.md):

    DIR/npy/<dtype>.npy, DIR/npy/scalar.npy, DIR/npy/empty.npy
    DIR/npz/stored.npz, DIR/npz/compressed.npz, DIR/npz/zip64.npz
    DIR/safetensors/model.safetensors, DIR/safetensors/all_dtypes.safetensors

It loads each with numpy / safetensors, compares dtype, shape and every value
bit for bit, and also checks that our .npy and safetensors bytes equal what
numpy and safetensors write for the same arrays.
"""
import argparse
import io
import os
import sys
import zipfile

import numpy as np
import safetensors.numpy as stnp
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))


def dtype_arrays():
    """One small array per supported dtype, named by dtype (little-endian, C order)."""
    return {
        "float32": np.array([[-2.5, -1.5, -0.5], [0.5, 1.5, 2.5]], dtype="<f4"),
        "float64": np.array([[0.0, 0.125], [1.0 / 3.0, -2.0], [1e300, -5e-324]], dtype="<f8"),
        "int8": np.array([-128, -1, 0, 1, 127], dtype="|i1"),
        "uint8": np.array([[0, 1], [254, 255]], dtype="|u1"),
        "int16": np.array([-32768, -1, 0, 32767], dtype="<i2"),
        "uint16": np.array([[0], [65535]], dtype="<u2"),
        "int32": np.array([-2147483648, 0, 2147483647], dtype="<i4"),
        "uint32": np.array([0, 4294967295], dtype="<u4"),
        "int64": np.array([[-9223372036854775808, -1], [0, 9223372036854775807]], dtype="<i8"),
        "uint64": np.array([0, 9223372036854775807], dtype="<u8"),
        "bool": np.array([True, False, True], dtype="|b1"),
    }


def extra_npy_arrays():
    return {
        "scalar": np.array(2.5, dtype="<f8"),
        "empty": np.zeros((0, 3), dtype="<f4"),
    }


def npz_arrays(compressed):
    arrays = {
        "weight": dtype_arrays()["float32"],
        "bias": np.array([0.5, -0.25, 4.0], dtype="<f8"),
        "labels": np.array([3, 1, 4, 1], dtype="<i8"),
        "mask": dtype_arrays()["bool"],
    }
    if compressed:
        # Something deflate really shrinks.
        arrays["zeros"] = np.zeros((16, 16), dtype="<f4")
    return arrays


def model_tensors():
    return {
        "conv1.weight": (np.arange(8, dtype="<f4") * 0.25).reshape(2, 1, 2, 2),
        "conv1.bias": np.array([0.5, -0.5], dtype="<f4"),
        "fc.weight": dtype_arrays()["float64"],
        "labels": np.array([3, 1, 4, 1], dtype="<i8"),
        "mask": np.array([True, False, False, True], dtype="|b1"),
        "pixels": dtype_arrays()["uint8"],
        "index": np.array([7, -7, 0], dtype="<i4"),
    }


MODEL_METADATA = {"format": "np"}


def write_fixtures(root):
    npy = os.path.join(root, "npy")
    npz = os.path.join(root, "npz")
    st = os.path.join(root, "safetensors")
    for d in (npy, npz, st):
        os.makedirs(d, exist_ok=True)

    for name, array in {**dtype_arrays(), **extra_npy_arrays()}.items():
        np.save(os.path.join(npy, name + ".npy"), array)
    # Versions 2.0 and 3.0 (3.0: UTF-8 header; numpy only picks it for non-Latin-1
    # field names, so ask for it explicitly).
    for version, name, array in [((2, 0), "v2_float32", dtype_arrays()["float32"]),
                                 ((3, 0), "v3_int16", dtype_arrays()["int16"])]:
        with open(os.path.join(npy, name + ".npy"), "wb") as f:
            np.lib.format.write_array(f, array, version=version)
    # Big-endian data.
    for name in ("float32", "float64", "int64"):
        array = dtype_arrays()[name]
        np.save(os.path.join(npy, "big_" + name + ".npy"), array.astype(array.dtype.newbyteorder(">")))
    # Fortran order: a rank-3 int32 array (0..23 in C order) and a big-endian float64 one.
    np.save(os.path.join(npy, "fortran_int32.npy"), np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4)))
    np.save(os.path.join(npy, "fortran_big_float64.npy"), np.asfortranarray(dtype_arrays()["float64"]).astype(">f8"))

    np.savez(os.path.join(npz, "stored.npz"), **npz_arrays(compressed=False))
    np.savez_compressed(os.path.join(npz, "compressed.npz"), **npz_arrays(compressed=True))

    stnp.save_file(model_tensors(), os.path.join(st, "model.safetensors"), metadata=MODEL_METADATA)
    stnp.save_file(dtype_arrays(), os.path.join(st, "all_dtypes.safetensors"))

    total = sum(os.path.getsize(os.path.join(d, f)) for d in (npy, npz, st) for f in os.listdir(d))
    print(f"wrote fixtures under {root}: {total} bytes")


# ---------------------------------------------------------------------------
# --verify

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL", message)


def same_array(label, actual, expected):
    check(actual.dtype == expected.dtype, f"{label}: dtype {actual.dtype} != {expected.dtype}")
    check(actual.shape == expected.shape, f"{label}: shape {actual.shape} != {expected.shape}")
    if actual.dtype == expected.dtype and actual.shape == expected.shape:
        # Bit for bit, so -0.0 and NaN payloads count too.
        check(np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes(),
              f"{label}: values differ: {actual!r} vs {expected!r}")


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def verify(root):
    checked = 0
    for name, expected in {**dtype_arrays(), **extra_npy_arrays()}.items():
        path = os.path.join(root, "npy", name + ".npy")
        data = open(path, "rb").read()
        same_array(path, np.load(path, allow_pickle=False), expected)
        check(data[6:8] == b"\x01\x00", f"{path}: version {data[6]}.{data[7]}, expected 1.0")
        header_end = 10 + int.from_bytes(data[8:10], "little")
        check(header_end % 64 == 0, f"{path}: data starts at {header_end}, not a multiple of 64")
        check(data == npy_bytes(expected), f"{path}: bytes differ from numpy.save's")
        checked += 1

    for name, compressed in (("stored", False), ("compressed", True), ("zip64", False)):
        path = os.path.join(root, "npz", name + ".npz")
        with zipfile.ZipFile(path) as archive:
            check(archive.testzip() is None, f"{path}: a member fails its CRC check")
            methods = {info.compress_type for info in archive.infolist()}
            wanted = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
            check(methods == {wanted}, f"{path}: compression methods {methods}, expected {{{wanted}}}")
        expected = npz_arrays(compressed)
        with np.load(path, allow_pickle=False) as loaded:
            check(list(loaded.files) == list(expected), f"{path}: members {loaded.files} != {list(expected)}")
            for key, array in expected.items():
                if key in loaded.files:
                    same_array(f"{path}[{key}]", loaded[key], array)
        checked += 1

    for name, tensors, metadata in (("model", model_tensors(), MODEL_METADATA), ("all_dtypes", dtype_arrays(), None)):
        path = os.path.join(root, "safetensors", name + ".safetensors")
        loaded = stnp.load_file(path)
        check(sorted(loaded) == sorted(tensors), f"{path}: tensors {sorted(loaded)} != {sorted(tensors)}")
        for key, array in tensors.items():
            if key in loaded:
                same_array(f"{path}[{key}]", loaded[key], array)
        with safe_open(path, framework="np") as f:
            check(f.metadata() == metadata, f"{path}: metadata {f.metadata()} != {metadata}")
        check(open(path, "rb").read() == stnp.save(tensors, metadata=metadata),
              f"{path}: bytes differ from safetensors.numpy.save's")
        checked += 1

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print(f"verified {checked} files in {root}: all match")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", metavar="DIR", help="check files written by the Swift writers in DIR")
    args = parser.parse_args()
    if args.verify:
        return verify(args.verify)
    write_fixtures(HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
