"""Makes the flat-colour superpixel parity fixtures under testdata/parity/lime/ (tw.*) that
crates/xai-lime/tests/segment_parity.rs reads.

    bash tools/parity/setup.sh            # once: a venv with scikit-image
    tools/parity/.venv/bin/python tools/parity/make_lime_testworld_segment_fixtures.py

The inputs are committed test-world scenes (testdata/testworld/sample/images/*.png, 224×224)
taken at every second pixel (112×112, no resampling). Their shapes are flat-coloured (a few
hundred distinct colours per image), so many quickshift kernel distances and densities tie
exactly up to the noise, and felzenszwalb's edge weights tie: the cases that a reordered
summation or a pruned search gets wrong first.

Files: tw.<scene>.<case>.labels.npy (uint8: every map here has fewer than 256 labels), and
tw_manifest.json listing the cases. quickshift uses rng=42, which xai's default seed
reproduces (`Quickshift::segment`), so no noise file is needed.
"""
import json
import pathlib

import numpy as np
import skimage
from skimage.io import imread
from skimage.segmentation import felzenszwalb, quickshift, slic

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "parity" / "lime"
SCENES = ROOT / "testdata" / "testworld" / "sample" / "images"

CASES = {
    "qs_lime": ("quickshift", dict(kernel_size=4, max_dist=200, ratio=0.2),
                ["scene_000100", "scene_000101", "scene_000103", "scene_000105"]),
    "felz_default": ("felzenszwalb", dict(), ["scene_000100", "scene_000101"]),
    "slic_default": ("slic", dict(), ["scene_000100", "scene_000101"]),
}
FUNCS = {
    "quickshift": lambda im, p: quickshift(im, rng=42, **p),
    "felzenszwalb": lambda im, p: felzenszwalb(im, **p),
    "slic": lambda im, p: slic(im, **p),
}


def main():
    cases = []
    for case, (method, params, scenes) in CASES.items():
        for scene in scenes:
            img = np.ascontiguousarray(imread(SCENES / f"{scene}.png")[::2, ::2, :3])
            labels = FUNCS[method](img, params)
            assert labels.min() >= 0 and labels.max() < 256
            np.save(OUT / f"tw.{scene}.{case}.labels.npy", labels.astype(np.uint8))
            cases.append(dict(scene=scene, stride=2, case=case, method=method, params=params,
                              segments=int(len(np.unique(labels)))))
    manifest = dict(made_by="tools/parity/make_lime_testworld_segment_fixtures.py",
                    versions=dict(skimage=skimage.__version__, numpy=np.__version__),
                    cases=cases)
    (OUT / "tw_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"skimage {skimage.__version__}, numpy {np.__version__}")
    for c in cases:
        print(f"  {c['scene']} {c['case']:13} {c['segments']:4} segments")


if __name__ == "__main__":
    main()
