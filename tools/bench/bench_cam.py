"""CAM time, pytorch-grad-cam vs xai, interleaved in one run on this machine.

    bash tools/parity/setup.sh     # once (torch, torchvision, grad-cam)
    cargo build --release --example bench_cam
    tools/parity/.venv/bin/python tools/bench/bench_cam.py [--rounds 2] [--iters 2] \
        [--archs resnet18,resnet50] [--methods gradcam,ablationcam,scorecam]

Both sides: torchvision-structured ResNet with seeded random weights, one random 224×224
input, target layer `layer4`, targets=None (top-1 class), the reference's default batch sizes
(AblationCAM 32, ScoreCAM 16), all cores, median time per map including normalisation. For
each round and case the reference runs first, then the xai example (its timings exclude
process start and weight creation; so do the reference's). Prints a Markdown table with the
ratio reference / xai (how many times faster xai is).
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
from pytorch_grad_cam import (AblationCAM, EigenCAM, EigenGradCAM, GradCAM, GradCAMPlusPlus,
                              HiResCAM, LayerCAM, ScoreCAM, XGradCAM)

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "examples" / "bench_cam"
METHODS = {
    "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM, "hirescam": HiResCAM,
    "layercam": LayerCAM, "eigencam": EigenCAM, "eigengradcam": EigenGradCAM,
    "ablationcam": AblationCAM, "scorecam": ScoreCAM,
}


class _Quiet:
    """tqdm progress bars of the reference go to stderr; silence them."""

    def __enter__(self):
        self.err = sys.stderr
        sys.stderr = open(os.devnull, "w")

    def __exit__(self, *a):
        sys.stderr.close()
        sys.stderr = self.err


def time_reference(arch, method, iters, warmup=1):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    cam = METHODS[method](model=model, target_layers=[model.layer4])
    out = []
    with _Quiet():
        for _ in range(warmup):
            cam(input_tensor=x, targets=None)
        for _ in range(iters):
            t = time.perf_counter()
            cam(input_tensor=x, targets=None)
            out.append((time.perf_counter() - t) * 1e3)
    return out


def time_xai(arch, method, iters):
    res = subprocess.run(
        [str(BIN), "--arch", arch, "--method", method, "--iters", str(iters)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])["ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} not found: run `cargo build --release --example bench_cam` first")
    torch.set_num_threads(os.cpu_count())
    cases = [(a, m) for a in args.archs.split(",") for m in args.methods.split(",")]
    results = {c: {"ref": [], "xai": []} for c in cases}
    for r in range(args.rounds):
        for arch, method in cases:
            results[(arch, method)]["ref"] += time_reference(arch, method, args.iters)
            results[(arch, method)]["xai"] += time_xai(arch, method, args.iters)
            print(f"round {r + 1}/{args.rounds} {arch} {method} done", file=sys.stderr)
    import pytorch_grad_cam  # noqa: F401  (version below)
    from importlib.metadata import version
    print(f"torch {torch.__version__}, grad-cam {version('grad-cam')}, {os.cpu_count()} cores, "
          f"{args.rounds} interleaved rounds\n")
    print("| model | method | pytorch-grad-cam (median) | xai (median) | reference / xai |")
    print("|---|---|---|---|---|")
    for (arch, method), v in results.items():
        t, x = statistics.median(v["ref"]), statistics.median(v["xai"])
        print(f"| {arch} | {method} | {t:.0f} ms | {x:.0f} ms | {t / x:.1f}× |")


if __name__ == "__main__":
    main()
