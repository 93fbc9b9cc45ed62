"""`python -m alexnet_trace SPEC.json -o trace.safetensors`: a seeded model of a spec, one step, a trace."""
import argparse
import sys

import torch

from . import module_from_spec, plant_fault, record_step, record_steps, write_trace
from .spec import load_spec


def main(argv=None):
    """The command line; returns the exit status (0 written, 2 an error, as `alexnet`)."""
    ap = argparse.ArgumentParser(
        prog="python -m alexnet_trace",
        description="Build the model of a spec (Docs/models.md) in PyTorch with seeded weights, run one training "
                    "step on a random batch and write it as a trace (Docs/oracle.md) for `alexnet check`.")
    ap.add_argument("spec", help="model spec JSON file")
    ap.add_argument("-o", "--output", required=True, help="the trace to write (.safetensors)")
    ap.add_argument("--batch", type=int, default=2, help="images (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights, input, labels and masks (default 0)")
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f32", help="element type (default f32)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--sgd", choices=["paper", "pytorch"], default="paper", help="SGD form of updated.* (default paper)")
    ap.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    ap.add_argument("--steps", type=int, metavar="T",
                    help="record T training steps (a new batch each, the velocity carried) as format version 2; "
                         "without it one step, version 1")
    ap.add_argument("--lr-schedule", metavar="LR1,LR2,...",
                    help="with --steps: the learning rate of each step (T numbers; default --lr every step)")
    ap.add_argument("--momentum", type=float, default=0.9, help="(default 0.9)")
    ap.add_argument("--weight-decay", type=float, default=0.0005, help="(default 0.0005)")
    ap.add_argument("--tf32", choices=["on", "off"], help="CUDA: allow TF32 in matmul and cuDNN or not (default: "
                                                           "torch's setting, recorded)")
    ap.add_argument("--input", metavar="C,H,W", help="replace the spec's input shape")
    ap.add_argument("--init", choices=["fan-in", "paper"], default="fan-in",
                    help="weights N(0, 1/fan_in) (default) or N(0, 0.01^2)")
    ap.add_argument("--input-std", type=float, default=10.0, help="the input is N(0, X^2) (default 10: LRN matters)")
    ap.add_argument("--mode", choices=["training", "inference"], default="training")
    ap.add_argument("--grad-input", action="store_true", help="also record grad_input.<layer> for every layer")
    ap.add_argument("--tower-tensors", action="store_true", help="add tower<t>.* tensors (a two-tower spec)")
    ap.add_argument("--producer", help="text put first in the producer metadata")
    ap.add_argument("--plant-fault", action="append", default=[], metavar="NAME[IDX]=DELTA",
                    help="add DELTA to one element of a recorded tensor (IDX flat or i,j,k,l), to test the oracle; "
                         "repeatable")
    args = ap.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.input:
            spec["input"] = [int(v) for v in args.input.split(",")]
        dtype = {"f32": torch.float32, "f64": torch.float64}[args.dtype]
        model = module_from_spec(spec, init=args.init, seed=args.seed, dtype=dtype, device=args.device)
        g = torch.Generator(device="cpu").manual_seed(args.seed + 2)
        images = (torch.randn([args.batch] + spec["input"], generator=g, dtype=torch.float64) * args.input_std)
        images = images.to(dtype)
        classes = spec["layers"][-1].get("outputs")
        if classes is None:
            raise ValueError("the spec's last layer must be a linear or conv layer with outputs (the classes)")
        labels = torch.randint(classes, (args.batch,), generator=g, dtype=torch.int64)
        tf32 = None if args.tf32 is None else args.tf32 == "on"
        if args.steps is not None and not 1 <= args.steps <= 10000:
            raise ValueError(f"--steps must be in 1...10000, got {args.steps}")
        if args.lr_schedule is not None and args.steps is None:
            raise ValueError("--lr-schedule needs --steps")
        producer = (f"{args.producer}; " if args.producer else "") + (
            f"python -m alexnet_trace --seed {args.seed} --batch {args.batch} --init {args.init} "
            f"--input-std {args.input_std:g}")
        if args.steps is not None:
            if args.mode != "training" or args.tower_tensors:
                raise ValueError("--steps records training steps without per-tower tensors")
            # Step 1's batch is the one-step trace's; each later step draws its own from the same generator.
            batches = [(images, labels)]
            for _ in range(args.steps - 1):
                more = (torch.randn([args.batch] + spec["input"], generator=g, dtype=torch.float64) * args.input_std)
                batches.append((more.to(dtype), torch.randint(classes, (args.batch,), generator=g, dtype=torch.int64)))
            rates = ([float(r) for r in args.lr_schedule.split(",")] if args.lr_schedule is not None else args.lr)
            producer += f" --steps {args.steps}" + (f" --lr-schedule {args.lr_schedule}" if args.lr_schedule else "")
            tensors, meta = record_steps(model, spec, batches, None, sgd_form=args.sgd, lr=rates,
                                         momentum=args.momentum, weight_decay=args.weight_decay, tf32=tf32,
                                         producer=producer, grad_input=args.grad_input)
        else:
            tensors, meta = record_step(model, spec, images, labels, None, sgd_form=args.sgd, lr=args.lr,
                                        momentum=args.momentum, weight_decay=args.weight_decay, mode=args.mode,
                                        tf32=tf32, producer=producer, grad_input=args.grad_input,
                                        tower_tensors=args.tower_tensors)
        for fault in args.plant_fault:
            name, index, old, new = plant_fault(tensors, fault)
            print(f"planted: {name}[{index}] {old!r} -> {new!r}", file=sys.stderr)
            meta["producer"] += f"; PLANTED FAULT {fault}"
        write_trace(args.output, tensors, meta)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"alexnet_trace: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(tensors)} tensors, {meta['dtype']}, {meta['mode']}, {meta['producer']}")
    return 0


def _entry():
    """The `alexnet-trace` console script."""
    sys.exit(main())


if __name__ == "__main__":
    _entry()
