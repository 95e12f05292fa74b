"""`xai segment --method slic` against scikit-image where the connectivity step does the most:
low compactness (ragged, disconnected clusters, many small pieces, segments cut at
`max_size`) on random images large enough that xai labels them in two bands of rows at once.

    bash tools/parity/setup.sh                 # once (scikit-image, Pillow)
    cargo build --release --bin xai
    tools/parity/.venv/bin/python tools/parity/slic_connectivity_sweep.py [--seed 99] [--sizes 224x224,...]

Images come from `segment_sweep.random_image` (RGB and grey). Each runs SLIC with four
(compactness, n_segments) settings; the label maps must be identical. Prints, per map, the
largest segment against scikit-image's `max_size` (3 × the mean segment size of the k-means
labels), so that the cut cases are visible. Exits non-zero on any difference.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from skimage.segmentation import slic

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from segment_sweep import ROOT, random_image  # noqa: E402

SETTINGS = [(0.5, 30), (1.0, 100), (0.2, 10), (2.0, 300)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--sizes", default="224x224,300x200,512x384,160x320,129x257")
    ap.add_argument("--xai", default=str(ROOT / "target" / "release" / "xai"))
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = pathlib.Path(tempfile.mkdtemp())
    total = same = cut = 0
    for size in args.sizes.split(","):
        h, w = map(int, size.split("x"))
        for mode in ["RGB", "L"]:
            path = tmp / f"{size}_{mode}.png"
            random_image(rng, h, w, mode).save(path)
            image = np.array(Image.open(path).convert("RGB"))
            for compactness, n_segments in SETTINGS:
                ref = slic(image, compactness=compactness, n_segments=n_segments, start_label=1)
                raw = slic(image, compactness=compactness, n_segments=n_segments, start_label=1,
                           enforce_connectivity=False)
                max_size = int(3 * h * w / len(np.unique(raw)))
                out = tmp / "labels.npy"
                subprocess.run(
                    [args.xai, "segment", "--method", "slic", "--compactness", str(compactness),
                     "--n-segments", str(n_segments), "--image", str(path), "--out", str(out)],
                    check=True, capture_output=True)
                got = np.load(out)
                largest = int(np.bincount(ref.ravel()).max())
                identical = got.shape == ref.shape and np.array_equal(got, ref)
                total += 1
                same += identical
                cut += largest >= max_size
                verdict = "identical" if identical else f"DIFFERENT ({int((got != ref).sum())} pixels)"
                print(f"{size} {mode} compactness {compactness} n_segments {n_segments}: {verdict}; "
                      f"largest segment {largest}, max_size {max_size}")
    print(f"{same} of {total} identical; {cut} with a segment at or over max_size")
    sys.exit(0 if same == total else 1)


if __name__ == "__main__":
    main()
