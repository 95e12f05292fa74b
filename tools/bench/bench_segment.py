"""Superpixel time, scikit-image vs xai, interleaved in one run on this machine.

    bash tools/parity/setup.sh     # once (scikit-image)
    cargo build --release --example bench_segment
    tools/parity/.venv/bin/python tools/bench/bench_segment.py [--rounds 3] [--iters 3] \
        [--methods quickshift,slic,felzenszwalb] [--sizes 224,512] [--base OLD_BINARY]

Images: scikit-image's astronaut() (512×512, the "photo") and the same photo resized to
224×224 (anti-aliased, uint8), written as PNGs to a temporary folder. Parameters: LIME's for
quickshift (kernel_size=4, max_dist=200, ratio=0.2), scikit-image's defaults for slic and
felzenszwalb. For each round, size and method scikit-image runs first, then the xai example
(its timings exclude process start and PNG decoding; the reference's exclude loading too);
both take the median of --iters calls after one warm-up call. Also checks that both give the
same label map (quickshift: same number of segments, as the tie-breaking noise differs).
Prints a Markdown table with the ratio scikit-image / xai (how many times faster xai is).

Every timed part (the reference, xai, the base) starts after a pause of SETTLE_S seconds: on
the 2-core VM these numbers come from, the same xai build started right after scikit-image's
calls ran up to 50% slower (felzenszwalb 224×224: 4.1 vs 2.9 ms, 4.7 ms with no pause, 3.5 ms
after 5 ms, 2.9 ms after 50 ms), which made the order of the two sides part of the ratio.

--base takes another build of the example (e.g. main's, copied aside) and times it in the same
rounds, right after the current one, so a before/after comparison sees the same machine load;
the table then gains "before" columns.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import skimage
from skimage import data
from skimage.io import imsave
from skimage.segmentation import felzenszwalb, quickshift, slic
from skimage.transform import resize
from skimage.util import img_as_ubyte

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "examples" / "bench_segment"
REFERENCE = {
    "quickshift": lambda im: quickshift(im, kernel_size=4, max_dist=200, ratio=0.2),
    "slic": lambda im: slic(im),
    "felzenszwalb": lambda im: felzenszwalb(im),
}


# Seconds of idle time before each timed part (see the module docs).
SETTLE_S = 0.2


def settle():
    time.sleep(SETTLE_S)


def time_reference(method, image, iters):
    settle()
    fn = REFERENCE[method]
    labels = fn(image)
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        labels = fn(image)
        ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms), labels


def time_bin(binary, method, path, iters):
    settle()
    cmd = [str(binary), "--method", method, "--image", str(path), "--iters", str(iters)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return statistics.median(res["ms"]), res["threads"]


def time_xai(method, path, iters, out):
    ms, threads = time_bin(BIN, method, path, iters)
    # The same segmentation through the CLI binary, for the label comparison.
    xai = ROOT / "target" / "release" / "xai"
    labels = None
    if xai.exists():
        subprocess.run([str(xai), "segment", "--method", method, "--image", str(path),
                        "--out", str(out)], check=True, capture_output=True)
        labels = np.load(out)
    return ms, threads, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--methods", default="quickshift,slic,felzenszwalb")
    ap.add_argument("--sizes", default="224,512")
    ap.add_argument("--base", type=pathlib.Path, default=None,
                    help="another bench_segment binary to time in the same rounds (before)")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: cargo build --release --example bench_segment")
    if args.base is not None and not args.base.exists():
        sys.exit(f"--base {args.base} does not exist")
    methods = args.methods.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    photo = data.astronaut()
    tmp = pathlib.Path(tempfile.mkdtemp())
    images = {}
    for s in sizes:
        im = photo if s == photo.shape[0] else img_as_ubyte(
            resize(photo, (s, s), anti_aliasing=True))
        path = tmp / f"astronaut_{s}.png"
        imsave(path, im, check_contrast=False)
        images[s] = (im, path)

    ref_ms = {}
    xai_ms = {}
    base_ms = {}
    agree = {}
    threads = None
    for rnd in range(args.rounds):
        for s in sizes:
            im, path = images[s]
            for m in methods:
                r, ref_labels = time_reference(m, im, args.iters)
                x, threads, labels = time_xai(m, path, args.iters, tmp / "labels.npy")
                ref_ms.setdefault((s, m), []).append(r)
                xai_ms.setdefault((s, m), []).append(x)
                b = None
                if args.base is not None:
                    b, _ = time_bin(args.base, m, path, args.iters)
                    base_ms.setdefault((s, m), []).append(b)
                if labels is not None:
                    if m == "quickshift":
                        agree[(s, m)] = ("same count" if labels.max() == ref_labels.max()
                                         else f"{labels.max() + 1} vs {ref_labels.max() + 1}")
                    else:
                        agree[(s, m)] = ("identical" if np.array_equal(labels, ref_labels)
                                         else f"{int((labels != ref_labels).sum())} px differ")
                before = "" if b is None else f" (before {b:.1f} ms)"
                print(f"round {rnd} {s}×{s} {m}: scikit-image {r:.1f} ms, xai {x:.1f} ms"
                      f"{before}, load {os.getloadavg()[0]:.1f}", file=sys.stderr)

    print(f"scikit-image {skimage.__version__}, numpy {np.__version__}, "
          f"xai threads {threads}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    if args.base is None:
        print("| image | method | scikit-image ms | xai ms | ratio | labels |")
        print("|---|---|---:|---:|---:|---|")
    else:
        print("| image | method | scikit-image ms | xai ms | ratio | before ms | ratio before "
              "| labels |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
    for s in sizes:
        for m in methods:
            r = statistics.median(ref_ms[(s, m)])
            x = statistics.median(xai_ms[(s, m)])
            before = ""
            if args.base is not None:
                b = statistics.median(base_ms[(s, m)])
                before = f" {b:.1f} | {r / b:.1f}× |"
            print(f"| {s}×{s} | {m} | {r:.1f} | {x:.1f} | {r / x:.1f}× |{before} "
                  f"{agree.get((s, m), 'n/a')} |")


if __name__ == "__main__":
    main()
