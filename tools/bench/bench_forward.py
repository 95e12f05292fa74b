"""ResNet forward and backward time, torch vs xai, interleaved in one run on this machine.

    bash tools/parity/setup.sh     # once (torch, torchvision)
    cargo build --release --example bench_forward
    tools/parity/.venv/bin/python tools/bench/bench_forward.py [--rounds 3] [--iters 5] \
        [--cases resnet18:1,resnet50:32] [--modes forward,gradcam,input-grad] [--base BIN]

Both sides use seeded random weights, a random 224×224 input, all cores (torch threads =
os.cpu_count(), or `--threads N` on both sides). For each round and each case, torch runs first, then the xai binary (its own
timings exclude process start and weight creation), then, with `--base`, another build of the
same example (e.g. of an older commit) for a before/after comparison in the same run.

Modes (the same work on both sides; torch's parameters do not require gradients, as xai's
weights are constants):
- forward: logits of the batch;
- gradcam: forward to layer4 without gradients, then ∂ logit₀ / ∂ layer4 (avgpool, fc);
- input-grad: forward with gradients, then ∂ logit₀ / ∂ input through the whole network.

Prints a Markdown table with the median and the best time per iteration and the ratios
xai / torch of both (the best-of ratio is the more robust one on a loaded machine), and the
load average before and after.
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


_MODELS = {}


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def wait_idle(min_idle, timeout):
    """Waits until the CPUs were at least `min_idle` idle over one second (or `timeout` s);
    returns the idle fraction seen last."""
    start = time.time()
    while True:
        t0, i0 = cpu_times()
        time.sleep(1.0)
        t1, i1 = cpu_times()
        idle = (i1 - i0) / max(1, t1 - t0)
        if idle >= min_idle or time.time() - start > timeout:
            return idle


def torch_model(arch):
    if arch not in _MODELS:
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        features = torch.nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool,
            model.layer1, model.layer2, model.layer3, model.layer4,
        )
        _MODELS[arch] = (model, features)
    return _MODELS[arch]


def torch_step(arch, x, mode):
    model, features = torch_model(arch)
    if mode == "forward":
        with torch.inference_mode():
            return model(x).sum().item()
    if mode == "gradcam":
        with torch.no_grad():
            a = features(x)
        a.requires_grad_(True)
        out = model.fc(torch.flatten(model.avgpool(a), 1))
        (g,) = torch.autograd.grad(out[:, 0].sum(), a)
        return g.sum().item()
    if mode == "input-grad":
        xv = x.clone().requires_grad_(True)
        out = model(xv)
        (g,) = torch.autograd.grad(out[:, 0].sum(), xv)
        return g.sum().item()
    raise ValueError(mode)


def time_torch(arch, batch, iters, mode, warmup=2):
    x = torch.randn(batch, 3, 224, 224)
    out = []
    for _ in range(warmup):
        torch_step(arch, x, mode)
    for _ in range(iters):
        t = time.perf_counter()
        torch_step(arch, x, mode)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def time_xai(binary, arch, batch, iters, mode, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    res = subprocess.run(
        [str(binary), "--arch", arch, "--batch", str(batch), "--iters", str(iters),
         "--mode", mode],
        check=True, capture_output=True, text=True, env=env,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])["ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--cases", default="resnet18:1,resnet18:32,resnet50:1,resnet50:32")
    ap.add_argument("--modes", default="forward")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads on both sides (torch.set_num_threads, RAYON_NUM_THREADS)")
    ap.add_argument("--bin", default=str(BIN), help="the xai bench_forward binary")
    ap.add_argument("--wait-idle", type=float, default=0.0,
                    help="before each case, wait until the CPUs are this idle (0..1) over 1 s")
    ap.add_argument("--wait-timeout", type=float, default=120.0)
    ap.add_argument("--base", default=None,
                    help="another bench_forward binary (e.g. an older build) timed in the same run")
    args = ap.parse_args()
    binary = pathlib.Path(args.bin)
    if not binary.exists():
        sys.exit(f"{binary} not found: run `cargo build --release --example bench_forward` first")
    torch.set_num_threads(args.threads)
    cases = [(c.split(":")[0], int(c.split(":")[1]), m)
             for c in args.cases.split(",") for m in args.modes.split(",")]
    sides = ["torch", "xai"] + (["base"] if args.base else [])
    results = {c: {s: [] for s in sides} for c in cases}
    load_before = os.getloadavg()
    idles = []
    for r in range(args.rounds):
        for arch, batch, mode in cases:
            if args.wait_idle > 0:
                idles.append(wait_idle(args.wait_idle, args.wait_timeout))
            iters = args.iters if batch == 1 else max(1, args.iters // 2)
            v = results[(arch, batch, mode)]
            v["torch"] += time_torch(arch, batch, iters, mode)
            v["xai"] += time_xai(binary, arch, batch, iters, mode, args.threads)
            if args.base:
                v["base"] += time_xai(args.base, arch, batch, iters, mode, args.threads)
            print(f"round {r + 1}/{args.rounds} {arch} batch {batch} {mode} done", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {args.threads} threads per side, "
          f"{args.rounds} interleaved rounds, "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"(1-min; 15-min {load_after[2]:.1f})"
          + (f"; CPUs idle before each case: median {statistics.median(idles):.0%}, "
             f"min {min(idles):.0%}" if idles else "") + "\n")
    med = statistics.median
    head = "| work | torch median / best | xai median / best | xai / torch (median) | xai / torch (best) |"
    sep = "|---|---|---|---|---|"
    if args.base:
        head += " base median / best | base / torch (median) | base / torch (best) |"
        sep += "---|---|---|"
    print(head)
    print(sep)
    for (arch, batch, mode), v in results.items():
        t, x = v["torch"], v["xai"]
        row = (f"| {arch} {mode}, batch {batch} | {med(t):.1f} / {min(t):.1f} ms "
               f"| {med(x):.1f} / {min(x):.1f} ms | {med(x) / med(t):.2f}× | {min(x) / min(t):.2f}× |")
        if args.base:
            b = v["base"]
            row += (f" {med(b):.1f} / {min(b):.1f} ms | {med(b) / med(t):.2f}× "
                    f"| {min(b) / min(t):.2f}× |")
        print(row)


if __name__ == "__main__":
    main()
