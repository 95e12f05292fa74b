"""ResNet forward time, torch vs xai, interleaved in one run on this machine.

    bash tools/parity/setup.sh     # once (torch, torchvision)
    cargo build --release --example bench_forward
    tools/parity/.venv/bin/python tools/bench/bench_forward.py [--rounds 3] [--iters 5]

Both sides use seeded random weights, a random 224×224 input, all cores (torch threads =
os.cpu_count()), and report the median time per forward pass. For each round and each case,
torch runs first, then the xai binary (its own timings exclude process start and weight
creation). Prints a Markdown table with the ratio xai / torch.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import torch
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "examples" / "bench_forward"


def time_torch(arch, batch, iters, warmup=2):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    x = torch.randn(batch, 3, 224, 224)
    out = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(iters):
            t = time.perf_counter()
            model(x)
            out.append((time.perf_counter() - t) * 1e3)
    return out


def time_xai(arch, batch, iters):
    res = subprocess.run(
        [str(BIN), "--arch", arch, "--batch", str(batch), "--iters", str(iters)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])["ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--cases", default="resnet18:1,resnet18:32,resnet50:1,resnet50:32")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} not found: run `cargo build --release --example bench_forward` first")
    torch.set_num_threads(os.cpu_count())
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]
    results = {c: {"torch": [], "xai": []} for c in cases}
    for r in range(args.rounds):
        for arch, batch in cases:
            iters = args.iters if batch == 1 else max(1, args.iters // 2)
            results[(arch, batch)]["torch"] += time_torch(arch, batch, iters)
            results[(arch, batch)]["xai"] += time_xai(arch, batch, iters)
            print(f"round {r + 1}/{args.rounds} {arch} batch {batch} done", file=sys.stderr)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {args.rounds} interleaved rounds\n")
    print("| work | torch (median) | xai (median) | xai / torch |")
    print("|---|---|---|---|")
    for (arch, batch), v in results.items():
        t, x = statistics.median(v["torch"]), statistics.median(v["xai"])
        print(f"| {arch} forward, batch {batch} | {t:.1f} ms | {x:.1f} ms | {x / t:.2f}× |")


if __name__ == "__main__":
    main()
