"""Is a quickshift difference found by `segment_sweep.py` a knife edge of the reference?

    cargo build --release --bin xai
    tools/parity/.venv/bin/python tools/parity/quickshift_knife_edge.py \
        --seed 12 --sizes 224x224,300x200,512x384,97x301 --pick 512x384:RGBA

Regenerates the sweep's image (same seed, sizes and modes, so the same random stream), runs
`xai segment --method quickshift` with LIME's settings (or `--small`: the sweep's second
quickshift case) and scikit-image on it, then runs scikit-image again several times with its
own Lab image moved by one ulp in a random half of the values. If those one-ulp moves shift
about as many pixels as separate xai's map from the reference's, and some land near xai's map,
the difference is the reference's own sensitivity to the last bit of its Lab values (xai's are
within an ulp or so of them), not a different algorithm.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import segment_sweep  # noqa: E402  (the sweep's image generator)
import skimage.segmentation._quickshift as quickshift_module  # noqa: E402
from skimage.segmentation import quickshift  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="1x1,1x7,2x3,5x1,7x50,31x17,64x64,100x61,160x224")
    parser.add_argument("--modes", default="RGB,L,RGBA")
    parser.add_argument("--pick", required=True, help="the image, as HxW:MODE")
    parser.add_argument("--small", action="store_true",
                        help="kernel_size 2, max_dist 10, ratio 0.5 instead of LIME's 4, 200, 0.2")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "xai"))
    args = parser.parse_args()

    size, mode = args.pick.split(":")
    pick = (*(int(v) for v in size.split("x")), mode)
    rng = np.random.default_rng(args.seed)
    image = None
    for h, w in [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]:
        for m in args.modes.split(","):
            candidate = segment_sweep.random_image(rng, h, w, m)
            if (h, w, m) == pick:
                image = candidate
                break
        if image is not None:
            break
    if image is None:
        sys.exit(f"{args.pick} is not among --sizes × --modes")

    kernel_size, max_dist, ratio = (2, 10, 0.5) if args.small else (4, 200, 0.2)
    flags = ["--kernel-size", str(kernel_size), "--max-dist", str(max_dist),
             "--ratio", str(ratio)]
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "image.png"
        image.save(path)
        out = pathlib.Path(tmp) / "labels.npy"
        subprocess.run([args.binary, "segment", "--method", "quickshift", "--image", str(path),
                        "--out", str(out)] + flags, check=True, capture_output=True)
        ours = np.load(out)
        rgb = np.array(Image.open(path).convert("RGB"))

    def reference():
        return quickshift(rgb, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, rng=42)

    expected = reference()
    print(f"xai against scikit-image: {int((ours != expected).sum())} pixels differ; "
          f"segments {len(np.unique(ours))} and {len(np.unique(expected))}")
    lab = quickshift_module.rgb2lab
    noise = np.random.default_rng(0)

    def moved_lab(*a, **k):
        values = lab(*a, **k)
        half = noise.random(values.shape) < 0.5
        towards = np.where(noise.random(values.shape) < 0.5, np.inf, -np.inf)
        return np.where(half, np.nextafter(values, towards), values)

    quickshift_module.rgb2lab = moved_lab
    try:
        for draw in range(args.draws):
            moved = reference()
            print(f"draw {draw}: {int((moved != expected).sum())} pixels from scikit-image's "
                  f"own map, {int((moved != ours).sum())} from xai's")
    finally:
        quickshift_module.rgb2lab = lab


if __name__ == "__main__":
    main()
