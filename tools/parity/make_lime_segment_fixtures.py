"""Makes the superpixel parity fixtures under testdata/parity/lime/ that
crates/xai-lime/tests/segment_parity.rs reads.

    bash tools/parity/setup.sh            # once: a venv with scikit-image, lime, torch
    tools/parity/.venv/bin/python tools/parity/make_lime_segment_fixtures.py

Made with scikit-image 0.26.0, NumPy 2.4.6, SciPy 1.17.1 (printed when the script runs).

Inputs are small crops of scikit-image's bundled photos, taken by striding (no resampling,
so the pixels are the photos' own):

- astro:   astronaut()[::8, ::8]             64 × 64
- coffee:  coffee()[::5, ::5][:, 12:108]     80 × 96
- chelsea: chelsea()[::4, ::4][:, :90]       75 × 90

Files (manifest.json lists every case with its parameters and the versions):

- <img>.image.npy: the uint8 (H, W, 3) input.
- <img>.qs_noise.npy: default_rng(42).normal(scale=1e-5, size=(H, W)), float64: the
  tie-breaking noise quickshift adds to its densities (skimage ≥ 0.21 with rng=42).
- <img>.<case>.labels.npy: int16 label maps of quickshift (LIME's settings and one other),
  slic (defaults, n_segments=50/compactness=20, sigma=1, slic_zero, start_label=0) and
  felzenszwalb (defaults, scale=100/sigma=0.5/min_size=50), all on the uint8 input.
- astro.lab.npy: rgb2lab(img_as_float(astro)), float64.
- gauss.input.npy + gauss.<case>.npy: scipy.ndimage.gaussian_filter of a seeded float64
  image on the spatial axes only (sigma [s, s, 0] and [sy, sx, 0], mode reflect), including a
  sigma whose radius is larger than the image.
- bounds.labels.npy (int16): a LIME-like label map with -1, 0 (background) and objects, and
  bounds.<mode>.npy / astro.felz.<mode>.npy: find_boundaries(labels, mode=...) as uint8
  for thick, inner and outer, on int32 labels (see the note in main() on int64 labels).
- astro.marked.npy: mark_boundaries(astro, felz labels) with the defaults, float64;
  astro.marked_outline.npy: the same with color (1, 0, 0) and outline_color (0, 0, 1), mode
  thick, stored as uint8 round(255 · v) (every value is a multiple of 1/255).
"""
import json
import pathlib

import numpy as np
import scipy
import scipy.ndimage as ndi
import skimage
from skimage import data
from skimage.color import rgb2lab
from skimage.segmentation import felzenszwalb, find_boundaries, mark_boundaries, quickshift, slic
from skimage.util import img_as_float

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "parity" / "lime"


def save(name, array):
    np.save(OUT / f"{name}.npy", array)


def labels16(labels):
    assert labels.min() >= -32768 and labels.max() <= 32767
    return labels.astype(np.int16)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    images = {
        "astro": data.astronaut()[::8, ::8],
        "coffee": data.coffee()[::5, ::5][:, 12:108],
        "chelsea": data.chelsea()[::4, ::4][:, :90],
    }
    quickshift_cases = {
        "qs_lime": dict(kernel_size=4, max_dist=200, ratio=0.2),
        "qs_other": dict(kernel_size=2.5, max_dist=6, ratio=0.5, sigma=1.0),
    }
    slic_cases = {
        "slic_default": dict(),
        "slic_n50_c20": dict(n_segments=50, compactness=20),
        "slic_sigma1": dict(n_segments=30, sigma=1.0),
        "slic_zero": dict(n_segments=40, slic_zero=True),
        "slic_start0": dict(n_segments=60, compactness=5, start_label=0),
    }
    felz_cases = {
        "felz_default": dict(),
        "felz_other": dict(scale=100, sigma=0.5, min_size=50),
    }
    cases = []
    for name, img in images.items():
        img = np.ascontiguousarray(img)
        save(f"{name}.image", img)
        h, w = img.shape[:2]
        noise = np.random.default_rng(42).normal(scale=1e-5, size=(h, w))
        save(f"{name}.qs_noise", noise)
        for case, params in quickshift_cases.items():
            labels = quickshift(img, rng=42, **params)
            save(f"{name}.{case}.labels", labels16(labels))
            cases.append(dict(image=name, case=case, method="quickshift", params=params,
                              segments=int(labels.max()) + 1))
        for case, params in slic_cases.items():
            labels = slic(img, **params)
            save(f"{name}.{case}.labels", labels16(labels))
            cases.append(dict(image=name, case=case, method="slic", params=params,
                              segments=int(len(np.unique(labels)))))
        for case, params in felz_cases.items():
            labels = felzenszwalb(img, **params)
            save(f"{name}.{case}.labels", labels16(labels))
            cases.append(dict(image=name, case=case, method="felzenszwalb", params=params,
                              segments=int(labels.max()) + 1))

    astro = images["astro"]
    save("astro.lab", rgb2lab(img_as_float(astro)))

    rng = np.random.default_rng(7)
    gauss_in = rng.random((12, 10, 3)) * 100.0 - 20.0
    save("gauss.input", gauss_in)
    gauss_cases = {"s0.6": (0.6, 0.6), "s1.5": (1.5, 1.5), "s2.0_0.7": (2.0, 0.7),
                   "s0_1.2": (0.0, 1.2), "s5": (5.0, 5.0)}
    for case, (sy, sx) in gauss_cases.items():
        save(f"gauss.{case}", ndi.gaussian_filter(gauss_in, sigma=[sy, sx, 0], mode="reflect"))

    bounds = np.zeros((14, 17), dtype=np.int16)
    bounds[2:7, 3:9] = 1
    bounds[5:12, 7:14] = 2
    bounds[0:3, 12:17] = -1
    bounds[9:14, 0:4] = 3
    bounds[10, 2] = 0
    save("bounds.labels", bounds)
    # int32 labels, as xai's. With scikit-image's own int64 (intp) labels 'outer' marks a
    # few more object pixels next to the background: SciPy's separable min filter runs in
    # double precision, and iinfo(int64).max (the background stand-in) comes back as
    # iinfo(int64).min wherever a whole 1-D window is background.
    felz64 = felzenszwalb(astro)
    felz = felz64.astype(np.int32)
    n64 = int((find_boundaries(felz64, mode="outer") != find_boundaries(felz, mode="outer")).sum())
    print(f"find_boundaries outer: int64 labels differ from int32 labels in {n64} pixels")
    for mode in ("thick", "inner", "outer"):
        save(f"bounds.{mode}", find_boundaries(bounds, mode=mode).astype(np.uint8))
        save(f"astro.felz.{mode}", find_boundaries(felz, mode=mode).astype(np.uint8))
    save("astro.marked", mark_boundaries(astro, felz))
    outlined = mark_boundaries(astro, felz, color=(1, 0, 0), outline_color=(0, 0, 1), mode="thick")
    q = np.round(outlined * 255.0)
    assert np.all(q / 255.0 - outlined < 1e-12)
    save("astro.marked_outline", q.astype(np.uint8))

    manifest = dict(
        made_by="tools/parity/make_lime_segment_fixtures.py",
        versions=dict(skimage=skimage.__version__, numpy=np.__version__, scipy=scipy.__version__),
        cases=cases,
        gauss={k: list(v) for k, v in gauss_cases.items()},
    )
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"skimage {skimage.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"{len(cases)} segmentation cases, {total / 1024:.0f} KiB in {OUT}")
    for c in cases:
        print(f"  {c['image']:8} {c['case']:13} {c['segments']:4} segments")


if __name__ == "__main__":
    main()
