#!/usr/bin/env python3
"""Compare the speed of our Swift AlexNet with PyTorch and ONNX Runtime on this machine.

Every framework computes the same network: the model spec is taken from our
own CLI (`alexnet summary --model NAME --input C,H,W --classes K --json`) and
rebuilt in PyTorch layer by layer (the mapping of Fixtures/oracle/make_traces.py).
For each case the script measures images per second (median, min, max of R
timed repetitions after one warm-up) and the peak resident memory, then prints
one Markdown table with the medians and the ratios ours / PyTorch and
ours / ONNX Runtime.

- ours: `alexnet bench --model NAME --input C,H,W --classes K --batch N
  --threads T --repetitions R --no-layers --json`, run once per (model,
  input, batch) and shared by that batch's inference and training cases.
- PyTorch (float32): inference is model.eval() under torch.inference_mode();
  a training step is forward, cross-entropy, backward, SGD (lr 0.01,
  momentum 0.9, weight decay 5e-4) step and zero_grad.
- ONNX Runtime (inference only): the PyTorch eval model exported with
  torch.onnx.export (legacy exporter, one file per batch size), run by
  CPUExecutionProvider with all graph optimisations, intra-op threads = T,
  inter-op threads = 1.

With --rounds K the whole set of cases is measured K times over, one round
after another, and every figure of a case is the median of its K per-round
medians; each ratio is the median of the K per-round ratios (ours and the other
framework measured within a minute of each other, in the same round), printed
with its lowest and highest round. On a shared machine whose speed drifts by
tens of percent over minutes, the per-round ratios move far less than the
frameworks' rates do.

Each PyTorch / ONNX Runtime measurement runs in its own subprocess (this
script re-invoked with a hidden --worker flag, answering one JSON line), so
its peak resident memory is its own (ru_maxrss). The parent process never
imports torch or onnxruntime.

Requirements: Python 3.11, and optionally torch, numpy, onnx, onnxruntime
(a framework that cannot be imported is skipped):

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install --find-links /opt/wheels "torch==2.13.0+cpu" numpy onnx onnxruntime

Usage (from the repository root, after `swift build -c release`):

    /work/venv-bench/bin/python Docs/tools/compare_speed.py
    /work/venv-bench/bin/python Docs/tools/compare_speed.py --cases l80-infer-b128,paper-infer-b1 \\
        --repetitions 2 --threads 2 --json /tmp/speed.json
    /work/venv-bench/bin/python Docs/tools/compare_speed.py --rounds 3 --json /tmp/speed.json
"""
import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ALEXNET = ".build/release/alexnet"
FRAMEWORKS = ("ours", "torch", "onnx")


@dataclass(frozen=True)
class Case:
    """One measurement: a model at an input shape, class count and batch, inference or a training step."""

    name: str
    model: str
    input: tuple
    classes: int
    batch: int
    mode: str  # "inference" or "training"


CASES = [
    Case("paper-infer-b1", "paper", (3, 227, 227), 1000, 1, "inference"),
    Case("paper-infer-b32", "paper", (3, 227, 227), 1000, 32, "inference"),
    Case("paper-infer-b128", "paper", (3, 227, 227), 1000, 128, "inference"),
    Case("paper-train-b32", "paper", (3, 227, 227), 1000, 32, "training"),
    Case("paper-train-b128", "paper", (3, 227, 227), 1000, 128, "training"),
    Case("l80-train-b128", "layers-80sec", (1, 28, 28), 10, 128, "training"),
    Case("l80-infer-b128", "layers-80sec", (1, 28, 28), 10, 128, "inference"),
]
CASES_BY_NAME = {case.name: case for case in CASES}


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def cpu_count():
    """CPUs this process may run on (the affinity mask), else all of the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_bytes():
    """This process's peak resident set size in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def summarise(seconds, batch):
    """Images per second (median, min, max) of a list of per-repetition times for `batch` images."""
    rates = [batch / s for s in seconds]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def time_repetitions(step, repetitions):
    """Call `step` once as a warm-up, then `repetitions` times; the seconds of each timed call."""
    step()
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def last_json_line(text):
    """The last line of `text` that parses as a JSON object (None if there is none)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def short_reason(stderr, rc):
    """One line saying why a subprocess failed: its "Error: ..." line (our CLI), else its last
    non-empty stderr line (a Python traceback's exception), else its exit status."""
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("Error")]
    if errors:
        return errors[0][:200]
    return lines[-1][:200] if lines else f"exit status {rc}"


# ---------------------------------------------------------------------------
# Our CLI: the model spec and `alexnet bench --json`
# ---------------------------------------------------------------------------

def run_alexnet(alexnet, arguments, attempts=10, wait_s=3.0):
    """Run our CLI with `arguments` and return the CompletedProcess.

    The binary may be rebuilt while this script runs, so a missing or busy
    executable is retried `attempts` times, `wait_s` seconds apart.
    """
    for attempt in range(attempts):
        try:
            return subprocess.run([str(alexnet), *arguments], capture_output=True, text=True)
        except OSError as error:  # FileNotFoundError, "Text file busy", permission during a rebuild
            if attempt + 1 == attempts:
                raise RuntimeError(f"cannot run {alexnet}: {error}") from error
            time.sleep(wait_s)


def input_text(shape):
    """(3, 227, 227) -> "3,227,227", the CLI's --input format."""
    return ",".join(str(v) for v in shape)


def model_spec(alexnet, case):
    """The case's model spec as a dict, from `alexnet summary ... --json`."""
    result = run_alexnet(alexnet, ["summary", "--model", case.model, "--input", input_text(case.input),
                                   "--classes", str(case.classes), "--json"])
    if result.returncode != 0:
        raise RuntimeError(f"alexnet summary failed: {short_reason(result.stderr, result.returncode)}")
    return json.loads(result.stdout)


def bench_ours(alexnet, case, threads, repetitions):
    """Our `alexnet bench --json` for the case's model, input and batch (both inference and training).

    --no-layers skips the per-layer timings, which this script does not use.
    """
    arguments = ["bench", "--model", case.model, "--input", input_text(case.input), "--classes", str(case.classes),
                 "--batch", str(case.batch), "--threads", str(threads), "--repetitions", str(repetitions),
                 "--no-layers", "--json"]
    result = run_alexnet(alexnet, arguments)
    if result.returncode != 0:
        raise RuntimeError(short_reason(result.stderr, result.returncode))
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise RuntimeError(f"bench --json printed no JSON object ({error})") from error


def ours_result(report, case):
    """The figures of one case from our bench report, in the workers' result format."""
    key = "inference" if case.mode == "inference" else "training_step"
    if key not in report:
        raise RuntimeError(f"bench --json has no {key!r}")
    return {"images_per_second": report[key]["images_per_second"],
            "peak_rss_bytes": report.get("peak_resident_bytes")}


# ---------------------------------------------------------------------------
# The spec in PyTorch (imported only inside the workers)
# ---------------------------------------------------------------------------

def pair(v):
    """`3` or `[3, 5]` -> (h, w)."""
    if isinstance(v, list):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_size(n, k, s, p, ceil):
    """Pooled extent, PyTorch's rule (ceil mode drops a last window that starts in the padding)."""
    if ceil:
        out = -(-(n + 2 * p - k) // s) + 1
        if (out - 1) * s >= n + p:
            out -= 1
        return out
    return (n + 2 * p - k) // s + 1


def output_shape(layer, shape):
    """Per-image output shape (a list) of `layer` for per-image input `shape`."""
    kind = layer["type"]
    if kind in ("conv", "maxpool", "avgpool"):
        (kh, kw), (sh, sw) = pair(layer["kernel"]), pair(layer.get("stride", 1))
        ph, pw = pair(layer.get("padding", 0))
        if kind == "conv":
            return [layer["outputs"], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1]
        ceil = layer["rounding"] == "ceil"
        return [shape[0], pool_size(shape[1], kh, sh, ph, ceil), pool_size(shape[2], kw, sw, pw, ceil)]
    if kind == "linear":
        return [layer["outputs"]]
    return list(shape)


def torch_modules():
    """The two layer types PyTorch lacks, as nn.Module classes: LRN per tower and the paper's dropout."""
    import torch
    from torch import nn

    class TowerLRN(nn.Module):
        """Cross-map LRN whose window stays inside each tower's half of the channels."""

        def __init__(self, towers, size, alpha, beta, k):
            super().__init__()
            self.towers = towers
            self.lrn = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)

        def forward(self, x):
            if self.towers == 1:
                return self.lrn(x)
            return torch.cat([self.lrn(part) for part in x.chunk(self.towers, dim=1)], dim=1)

    class PaperDropout(nn.Module):
        """The paper's dropout: multiply by a 0/1 mask in training, by (1 - rate) at inference."""

        def __init__(self, rate):
            super().__init__()
            self.rate = rate

        def forward(self, x):
            if self.training:
                return x * (torch.rand_like(x) >= self.rate)
            return x * (1.0 - self.rate)

    return TowerLRN, PaperDropout


def torch_layer(layer, shape, towers):
    """The nn.Module computing `layer` on per-image input `shape`; spec biases are the constants given."""
    from torch import nn
    TowerLRN, PaperDropout = torch_modules()
    kind = layer["type"]
    if kind == "conv":
        bias = layer.get("bias", 0.0)
        conv = nn.Conv2d(shape[0], layer["outputs"], pair(layer["kernel"]), stride=pair(layer.get("stride", 1)),
                         padding=pair(layer.get("padding", 0)), groups=int(layer.get("groups", 1)),
                         bias=bias is not False)
        if bias is not False:
            nn.init.constant_(conv.bias, float(bias))
        return conv
    if kind == "linear":
        bias = layer.get("bias", 0.0)
        linear = nn.Linear(int(shape[0] * shape[1] * shape[2]) if len(shape) == 3 else int(shape[0]),
                           layer["outputs"], bias=bias is not False)
        if bias is not False:
            nn.init.constant_(linear.bias, float(bias))
        return linear
    if kind == "relu":
        return nn.ReLU()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "lrn":
        size, alpha = int(layer["size"]), float(layer["alpha"])
        torch_alpha = alpha * size if layer["convention"] == "paper" else alpha  # PyTorch divides alpha by size
        return TowerLRN(towers, size, torch_alpha, float(layer["beta"]), float(layer["k"]))
    if kind == "maxpool":
        return nn.MaxPool2d(pair(layer["kernel"]), pair(layer.get("stride", 1)), pair(layer.get("padding", 0)),
                            ceil_mode=layer["rounding"] == "ceil")
    if kind == "avgpool":
        return nn.AvgPool2d(pair(layer["kernel"]), pair(layer.get("stride", 1)), pair(layer.get("padding", 0)),
                            ceil_mode=layer["rounding"] == "ceil",
                            count_include_pad=bool(layer.get("count_include_padding", False)))
    if kind == "dropout":
        rate = float(layer["rate"])
        return PaperDropout(rate) if layer["scaling"] == "paper" else nn.Dropout(rate)
    raise ValueError(f"layer {layer.get('name')!r}: unknown type {kind!r}")


def torch_model(spec):
    """The spec as an nn.Sequential (two towers as the equivalent grouped model), float32, default weights."""
    from torch import nn
    towers = int(spec.get("towers", 1))
    shape = list(spec["input"])
    modules = []
    for layer in spec["layers"]:
        if layer["type"] == "linear" and len(shape) == 3:
            modules.append(nn.Flatten())
        modules.append(torch_layer(layer, shape, towers))
        shape = output_shape(layer, shape)
    return nn.Sequential(*modules).float()


# ---------------------------------------------------------------------------
# Workers (each in its own process)
# ---------------------------------------------------------------------------

def worker_info(_job):
    """Versions of the installed frameworks (a worker, so the parent never imports them)."""
    info = {}
    try:
        import torch
        config = torch.__config__.show()
        onednn = next((l.strip(" -") for l in config.splitlines() if "MKL-DNN" in l or "oneDNN" in l), None)
        info["torch"] = {"version": torch.__version__, "mkldnn_available": torch.backends.mkldnn.is_available(),
                         "mkldnn_enabled": bool(torch.backends.mkldnn.enabled), "onednn": onednn,
                         "blas": "MKL" if torch.backends.mkl.is_available() else None}
    except ImportError as error:
        info["torch_missing"] = str(error)
    try:
        import onnxruntime
        info["onnxruntime"] = {"version": onnxruntime.__version__}
    except ImportError as error:
        info["onnxruntime_missing"] = str(error)
    return info


def worker_torch(job):
    """Time PyTorch on one case: inference under inference_mode, or a full SGD training step."""
    import torch
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    spec, batch = job["spec"], job["batch"]
    model = torch_model(spec)
    x = torch.randn(batch, *spec["input"])
    if job["mode"] == "inference":
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)
    else:
        model.train()
        classes = spec["layers"][-1]["outputs"]
        labels = torch.randint(0, classes, (batch,))
        loss_fn = torch.nn.CrossEntropyLoss()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            loss = loss_fn(model(x), labels)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    seconds = time_repetitions(step, job["repetitions"])
    return {"images_per_second": summarise(seconds, batch), "peak_rss_bytes": peak_rss_bytes()}


def worker_export(job):
    """Export the PyTorch eval model at the job's batch size to ONNX (job["path"])."""
    import torch
    torch.manual_seed(0)
    spec = job["spec"]
    model = torch_model(spec).eval()
    x = torch.randn(job["batch"], *spec["input"])
    torch.onnx.export(model, (x,), job["path"], input_names=["input"], output_names=["scores"],
                      opset_version=17, dynamo=False)
    return {"path": job["path"]}


def worker_onnx(job):
    """Time ONNX Runtime's CPUExecutionProvider on an exported model (inference)."""
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = job["threads"]
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(job["path"], options, providers=["CPUExecutionProvider"])
    batch = job["batch"]
    x = np.random.default_rng(0).standard_normal((batch, *job["spec"]["input"]), dtype=np.float32)
    name = session.get_inputs()[0].name

    def step():
        session.run(None, {name: x})
    seconds = time_repetitions(step, job["repetitions"])
    return {"images_per_second": summarise(seconds, batch), "peak_rss_bytes": peak_rss_bytes()}


WORKERS = {"info": worker_info, "torch": worker_torch, "export": worker_export, "onnx": worker_onnx}


def worker_main(job_text):
    """Entry point of a worker process: run the job, print its result as one JSON line."""
    job = json.loads(job_text)
    print(json.dumps(WORKERS[job["worker"]](job)), flush=True)


def run_worker(job):
    """Run this script as a worker on `job` (a dict) in a fresh Python process; its JSON answer."""
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                            capture_output=True, text=True)
    answer = last_json_line(result.stdout) if result.returncode == 0 else None
    if answer is None:
        raise RuntimeError(short_reason(result.stderr, result.returncode))
    return answer


# ---------------------------------------------------------------------------
# Measuring the cases
# ---------------------------------------------------------------------------

def measure_case(case, spec, args, ours_cache, workdir):
    """All frameworks' results for one case: {framework: result dict or {"error": reason}}."""
    results = {}
    job = {"spec": spec, "batch": case.batch, "mode": case.mode, "threads": args.threads,
           "repetitions": args.repetitions}
    if not args.skip_ours:
        key = (case.model, case.input, case.classes, case.batch)
        if key not in ours_cache:
            try:
                ours_cache[key] = bench_ours(args.alexnet, case, args.threads, args.repetitions)
            except RuntimeError as error:
                ours_cache[key] = {"error": str(error)}
        report = ours_cache[key]
        try:
            results["ours"] = {"error": report["error"]} if "error" in report else ours_result(report, case)
        except (KeyError, TypeError, RuntimeError) as error:
            results["ours"] = {"error": f"unexpected bench --json: {error!r}"}
    if not args.skip_torch:
        try:
            results["torch"] = run_worker({"worker": "torch", **job})
        except RuntimeError as error:
            results["torch"] = {"error": str(error)}
    if not args.skip_onnx and case.mode == "inference":
        path = str(Path(workdir) / f"{case.name}.onnx")
        try:
            run_worker({"worker": "export", "path": path, **job})
            results["onnx"] = run_worker({"worker": "onnx", "path": path, **job})
        except RuntimeError as error:
            results["onnx"] = {"error": str(error)}
        finally:
            Path(path).unlink(missing_ok=True)  # the paper's model is 244 MB
    return results


def framework_availability(info, args):
    """Turn off the frameworks that cannot be imported, saying so in one line each."""
    if not args.skip_torch and "torch_missing" in info:
        print(f"PyTorch: not available ({info['torch_missing']}); skipped")
        args.skip_torch = True
    if not args.skip_onnx and ("onnxruntime_missing" in info or "torch_missing" in info):
        reason = info.get("onnxruntime_missing") or "needs torch to export the model"
        print(f"ONNX Runtime: not available ({reason}); skipped")
        args.skip_onnx = True


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def median_of(result):
    """A result's median images/s, or None where it failed or is missing."""
    if not result or "error" in result:
        return None
    return result["images_per_second"]["median"]


def combine_rounds(rounds):
    """One framework's results over the rounds -> one result: the median of the per-round
    medians, the lowest minimum and highest maximum, the highest peak memory; an error
    only when no round produced a figure."""
    good = [r for r in rounds if r and "error" not in r]
    if not good:
        return next((r for r in rounds if r), None)
    rates = [r["images_per_second"] for r in good]
    peaks = [r["peak_rss_bytes"] for r in good if r.get("peak_rss_bytes")]
    return {"images_per_second": {"median": statistics.median(x["median"] for x in rates),
                                  "min": min(x["min"] for x in rates), "max": max(x["max"] for x in rates)},
            "peak_rss_bytes": max(peaks) if peaks else None, "rounds": len(good)}


def round_ratios(rounds, other):
    """ours / `other` in each round where both have a figure: median, min, max (None if none)."""
    values = [median_of(r.get("ours")) / median_of(r.get(other)) for r in rounds
              if median_of(r.get("ours")) is not None and median_of(r.get(other))]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def rate_cell(value):
    """Images/s with one decimal, or a dash."""
    return "—" if value is None else f"{value:.1f}"


def ratio_cell(ratio):
    """A ratio with two decimals, with its range over the rounds when there were several; or a dash."""
    if ratio is None:
        return "—"
    if ratio["rounds"] > 1:
        return f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"
    return f"{ratio['median']:.2f}"


def megabytes(result):
    """A result's peak resident memory in MB (10^6 bytes), or a dash."""
    if not result or "error" in result or not result.get("peak_rss_bytes"):
        return "—"
    return f"{result['peak_rss_bytes'] / 1e6:.0f}"


def load_text(load):
    """The 1-, 5- and 15-minute load averages as text."""
    return " / ".join(f"{v:.2f}" for v in load)


def header_lines(info, ours_report, threads, start_load):
    """The machine and software the figures come from (and how busy the machine was)."""
    lines = [f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs ({cpu_count()} usable), "
             f"{platform.system()} {platform.release()}; {threads} threads everywhere; "
             f"load average {load_text(start_load)} at the start, {load_text(os.getloadavg())} at the end"]
    if ours_report:
        lines.append(f"Ours: BLAS core {ours_report.get('blas_core', '?')}, CPU as we see it: "
                     f"{ours_report.get('cpu', '?')}")
    if "torch" in info:
        t = info["torch"]
        lines.append(f"PyTorch {t['version']}: mkldnn available {t['mkldnn_available']}, enabled "
                     f"{t['mkldnn_enabled']} ({t['onednn'] or 'oneDNN version unknown'}); BLAS {t['blas'] or '?'}")
    else:
        lines.append("PyTorch: not installed")
    if "onnxruntime" in info:
        lines.append(f"ONNX Runtime {info['onnxruntime']['version']}: CPUExecutionProvider, ORT_ENABLE_ALL, "
                     "inter-op threads 1")
    else:
        lines.append("ONNX Runtime: not installed")
    return lines


def table_lines(rows):
    """The Markdown table: medians, ratios and peak memory per case (rows: (case, [round results]))."""
    lines = ["| case | ours img/s | PyTorch img/s | ONNX Runtime img/s | ours/PyTorch | ours/ORT "
             "| peak RSS ours / PyTorch (MB) |",
             "|---|---|---|---|---|---|---|"]
    for case, rounds in rows:
        combined = {f: combine_rounds([r.get(f) for r in rounds]) for f in FRAMEWORKS}
        ours, torch_, onnx = (median_of(combined[f]) for f in FRAMEWORKS)
        onnx_cell = rate_cell(onnx) if case.mode == "inference" else "n/a"
        lines.append(f"| {case.name} | {rate_cell(ours)} | {rate_cell(torch_)} | {onnx_cell} | "
                     f"{ratio_cell(round_ratios(rounds, 'torch'))} | {ratio_cell(round_ratios(rounds, 'onnx'))} | "
                     f"{megabytes(combined['ours'])} / {megabytes(combined['torch'])} |")
    return lines


def failure_lines(rows):
    """One line per framework, case and round that produced no figure, with the reason."""
    names = {"ours": "ours", "torch": "PyTorch", "onnx": "ONNX Runtime", "spec": "spec"}
    lines = []
    for case, rounds in rows:
        for index, results in enumerate(rounds):
            where = f"{case.name}" + (f" (round {index + 1})" if len(rounds) > 1 else "")
            lines += [f"- {where}: {names.get(f, f)}: unavailable ({r['error']})"
                      for f, r in results.items() if "error" in r]
    return lines


def reproduce_command():
    """The command line that reproduces this run."""
    script = Path(__file__).resolve()
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in [sys.executable, str(script), *sys.argv[1:]])


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def parse_arguments(argv):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Compare our Swift AlexNet's speed with PyTorch and ONNX Runtime.")
    parser.add_argument("--alexnet", default=DEFAULT_ALEXNET,
                        help=f"our CLI (default: {DEFAULT_ALEXNET}, relative to the repository root)")
    parser.add_argument("--threads", type=int, default=cpu_count(), help="threads for every framework "
                        "(default: the number of CPUs)")
    parser.add_argument("--repetitions", type=int, default=5, help="timed repetitions after one warm-up (default 5)")
    parser.add_argument("--cases", default=",".join(CASES_BY_NAME),
                        help="comma-separated case names (default: all): " + ", ".join(CASES_BY_NAME))
    parser.add_argument("--rounds", type=int, default=1, help="measure every case this many times over, "
                        "round after round; figures and ratios are medians over the rounds (default 1)")
    parser.add_argument("--json", metavar="OUT", help="also write every result as JSON to OUT")
    parser.add_argument("--skip-ours", action="store_true", help="do not run our bench")
    parser.add_argument("--skip-torch", action="store_true", help="do not run PyTorch")
    parser.add_argument("--skip-onnx", action="store_true", help="do not run ONNX Runtime")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        unknown = [n for n in args.cases.split(",") if n not in CASES_BY_NAME]
        if unknown:
            parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES_BY_NAME)}")
        if args.threads < 1 or args.repetitions < 1 or args.rounds < 1:
            parser.error("--threads, --repetitions and --rounds must be at least 1")
        alexnet = Path(args.alexnet)
        args.alexnet = alexnet if alexnet.is_absolute() else REPO_ROOT / alexnet
    return args


def main(argv=None):
    """Measure the chosen cases and print the header, the table and the reproducing command."""
    args = parse_arguments(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    cases = [CASES_BY_NAME[n] for n in args.cases.split(",")]
    all_reports = []
    start_load = os.getloadavg()
    info = run_worker({"worker": "info"})
    framework_availability(info, args)
    specs, results = {}, {case.name: [] for case in cases}
    ours_report = None
    with tempfile.TemporaryDirectory(prefix="compare-speed-") as workdir:
        for round_index in range(args.rounds):
            # One bench of ours per (model, input, batch) and round, shared by its inference and training cases.
            ours_cache = {}
            for case in cases:
                suffix = f" (round {round_index + 1} of {args.rounds})" if args.rounds > 1 else ""
                print(f"measuring {case.name}{suffix} ...", file=sys.stderr, flush=True)
                if case.name not in specs:
                    try:
                        specs[case.name] = model_spec(args.alexnet, case)
                    except (RuntimeError, json.JSONDecodeError) as error:
                        specs[case.name] = {"error": f"no model spec: {error}"}
                spec = specs[case.name]
                if "error" in spec:
                    results[case.name].append({"spec": spec})
                    continue
                results[case.name].append(measure_case(case, spec, args, ours_cache, workdir))
            ours_report = ours_report or next((r for r in ours_cache.values() if "error" not in r), None)
            all_reports.extend(ours_cache.values())
    rows = [(case, results[case.name]) for case in cases]
    print("\n".join(header_lines(info, ours_report, args.threads, start_load)))
    print()
    print("\n".join(table_lines(rows)))
    failures = failure_lines(rows)
    if failures:
        print("\nNo figure:")
        print("\n".join(failures))
    rounds_text = (f" in each of {args.rounds} rounds, then the median over the rounds; a ratio is the median of the "
                   "rounds' ratios (lowest-highest round in brackets)") if args.rounds > 1 else ""
    print(f"\nImages/s: median of {args.repetitions} timed repetitions after one warm-up{rounds_text}; peak RSS of "
          "ours is the whole bench run of that batch (inference and training).")
    print(f"Reproduce: {reproduce_command()}")
    if args.json:
        document = {"command": reproduce_command(), "threads": args.threads, "repetitions": args.repetitions,
                    "rounds": args.rounds,
                    "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": cpu_count(),
                                "load_average_start": start_load, "load_average_end": os.getloadavg()},
                    "frameworks": info, "ours_reports": all_reports,
                    # "results": each framework over the rounds (combine_rounds); "rounds": every round's own.
                    "cases": [{"case": asdict(case),
                               "results": {f: combine_rounds([r.get(f) for r in rounds]) for f in FRAMEWORKS
                                           if any(f in r for r in rounds)},
                               "ratios": {f: round_ratios(rounds, f) for f in ("torch", "onnx")},
                               "rounds": rounds} for case, rounds in rows]}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
