"""pytorch-grad-cam's metrics vs xai-metrics, interleaved in one run on this machine.

    bash tools/parity/setup.sh     # once (torch, torchvision, grad-cam)
    cargo build --release --example bench_metrics
    tools/parity/.venv/bin/python tools/bench/bench_metrics.py [--arch resnet50] [--rounds 2]

Both sides: a torchvision-structured ResNet with random weights, one 224×224 input, the same
fixed Gaussian-blob map, the softmax probability of class 0. Timed: ROADCombined (percentiles
10..90, the reference's NoisyLinearImputer with its sparse direct solve; xai's conjugate
gradient), CamMultImageConfidenceChange, and xai's deletion and insertion curves (100 steps,
batched; the reference has none). Times exclude model building and process start.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "examples" / "bench_metrics"


def blob(n):
    cy, cx, s = 0.4 * n, 0.6 * n, 0.15 * n
    r, c = np.mgrid[0:n, 0:n].astype(np.float32)
    return np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * s * s)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    cams = blob(224)[None]
    targets = [ClassifierOutputSoftmaxTarget(0)]
    ref = {"road": lambda: ROADCombined()(x, cams, targets, model),
           "confidence": lambda: CamMultImageConfidenceChange()(x, cams, targets, model)}
    ref_t = {k: [] for k in ref}
    ours = {k: [] for k in ["road", "confidence", "deletion", "insertion"]}
    for r in range(args.rounds):
        for k, f in ref.items():
            t = time.perf_counter()
            with torch.no_grad():
                f()
            ref_t[k].append((time.perf_counter() - t) * 1e3)
        out = subprocess.run([str(BIN), "--arch", args.arch, "--iters", "1"], check=True,
                             capture_output=True, text=True)
        for k, v in json.loads(out.stdout).items():
            ours[k].extend(v["ms"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.arch}, 224×224, "
          f"{args.rounds} interleaved rounds\n")
    print("| metric | pytorch-grad-cam (median) | xai (median) | reference / xai |")
    print("|---|---|---|---|")
    for k in ours:
        xm = statistics.median(ours[k])
        if k in ref_t:
            rm = statistics.median(ref_t[k])
            print(f"| {k} | {rm:.0f} ms | {xm:.0f} ms | {rm / xm:.1f}× |")
        else:
            print(f"| {k} (100 steps) | — | {xm:.0f} ms | — |")


if __name__ == "__main__":
    main()
