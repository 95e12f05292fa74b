"""CLIP-Dissect's similarity stage, the reference's torch code vs xai, interleaved in one run.

    bash tools/parity/setup.sh     # once (torch)
    cargo build --release --example bench_similarity
    tools/parity/.venv/bin/python tools/bench/bench_similarity.py [--size 10000,20000,512] \
        [--functions soft-wpmi,wpmi,cos,cos3] [--rounds 2]

Seeded random S (images × concepts, cosines around 0.2) and A (images × units, ReLU'd, a third
exactly zero), saved as .npy under tools/bench/out/ and read by both sides. The reference side
is CLIP-Dissect's similarity functions as `tools/parity/make_dissect_fixtures.py` writes them
(softmax over concepts, a per-neuron Python loop of gathers for soft-WPMI/WPMI), on the CPU in
float32 with all cores. Times exclude loading; xai's exclude process start. Prints a Markdown
table with the ratio reference / xai.
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

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "parity"))
from make_dissect_fixtures import cos, cos3, soft_wpmi, wpmi  # noqa: E402

BIN = ROOT / "target" / "release" / "examples" / "bench_similarity"
OUT = ROOT / "tools" / "bench" / "out"
REF = {"soft-wpmi": soft_wpmi, "wpmi": wpmi, "cos": cos, "cos3": cos3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="10000,20000,512")
    ap.add_argument("--functions", default="soft-wpmi,wpmi,cos,cos3")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    n, c, u = map(int, args.size.split(","))
    names = args.functions.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    s = (0.2 + 0.05 * (rng.random((n, c), dtype=np.float32) - 0.5)).astype(np.float32)
    a = np.maximum(rng.random((n, u), dtype=np.float32) - 0.3, 0).astype(np.float32)
    np.save(OUT / "sim_S.npy", s)
    np.save(OUT / "sim_A.npy", a)
    ts, ta = torch.from_numpy(s), torch.from_numpy(a)
    ref_times = {k: [] for k in names}
    xai_times = {k: [] for k in names}
    for r in range(args.rounds):
        for name in names:
            t = time.perf_counter()
            with torch.no_grad():
                REF[name](ts, ta)
            ref_times[name].append((time.perf_counter() - t) * 1e3)
            out = subprocess.run([str(BIN), "--s", str(OUT / "sim_S.npy"), "--a", str(OUT / "sim_A.npy"),
                                  "--functions", name, "--iters", "1"],
                                 check=True, capture_output=True, text=True)
            xai_times[name].extend(json.loads(out.stdout)[name]["ms"])
            print(f"round {r + 1}/{args.rounds} {name} done", file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, S {n}×{c}, A {n}×{u}, "
          f"{args.rounds} interleaved rounds\n")
    print("| function | reference (median) | xai (median) | reference / xai |")
    print("|---|---|---|---|")
    for name in names:
        rm, xm = statistics.median(ref_times[name]), statistics.median(xai_times[name])
        print(f"| {name} | {rm:.0f} ms | {xm:.0f} ms | {rm / xm:.1f}× |")


if __name__ == "__main__":
    main()
