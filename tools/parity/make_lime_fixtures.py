"""Reference fixtures for xai-lime's explainer: lime's LimeImageExplainer on a small image.

What it makes (testdata/parity/lime_explain/):
  image.npy         (48, 64, 3) uint8: scikit-image's astronaut, resized
  segments.npy      (48, 64) int32: SLIC (40 segments, start_label=0) of that image, labels 0..n-1
  fudged.npy        (48, 64, 3) uint8: lime's mean-colour hidden image
  data.npy          (num_samples, n) int8: lime's sample matrix for random_state=SEED
  preds_<mode>.npy  (num_samples, classes) float64: the scores lime got, in call order
  checksums_<mode>.npy (num_samples,) int64: the pixel sum of each perturbed image lime built
  results.json      per feature-selection mode: top labels, and per label intercept, weights
                    (feature, coef) in lime's order, score, local prediction; plus masks
  mask_*.npy        get_image_and_mask outputs

The classifier is a fixed smooth function of the perturbed images, so the scores carry real
structure; the Rust tests inject these scores rather than recompute them (same segments, same
sample matrix, same scores → the surrogates must agree to 1e-6).

Command: tools/parity/.venv/bin/python tools/parity/make_lime_fixtures.py
Versions used for the committed fixtures: lime 0.2.0.1, scikit-image 0.26, scikit-learn 1.9,
NumPy 2.x.
"""

import json
import pathlib

import numpy as np
from lime import lime_image
from skimage import data as skdata
from skimage.segmentation import slic
from skimage.transform import resize

SEED = 7
NUM_SAMPLES = 300
OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "parity" / "lime_explain"


def make_image():
    img = resize(skdata.astronaut(), (48, 64), anti_aliasing=True)
    return (img * 255).round().astype(np.uint8)


# Fixed random projections of a coarse 6x8 colour grid of the image: 4 classes, softmax.
_rng = np.random.RandomState(123)
_W = _rng.normal(size=(4, 6 * 8 * 3))


def classifier(batch):
    batch = np.asarray(batch, dtype=np.float64) / 255.0
    b = batch.shape[0]
    coarse = batch.reshape(b, 6, 8, 8, 8, 3).mean(axis=(2, 4)).reshape(b, -1)
    logits = coarse @ _W.T * 0.5
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    image = make_image()
    segments = slic(image, n_segments=40, compactness=10, start_label=0).astype(np.int32)
    n = len(np.unique(segments))
    np.save(OUT / "image.npy", image)
    np.save(OUT / "segments.npy", segments)

    checksums = []
    outputs = []

    def recording_classifier(batch):
        for img in batch:
            checksums.append(int(np.asarray(img, dtype=np.int64).sum()))
        out = classifier(batch)
        outputs.append(out)
        return out

    modes = {
        "auto": dict(feature_selection="auto"),
        "none": dict(feature_selection="none"),
        "highest_weights_10": dict(feature_selection="highest_weights", num_features=10),
        "forward_selection_5": dict(feature_selection="forward_selection", num_features=5),
        "lasso_path_5": dict(feature_selection="lasso_path", num_features=5),
        "hide_black": dict(feature_selection="auto", hide_color=0),
    }
    results = {"seed": SEED, "num_samples": NUM_SAMPLES, "n_features": n, "modes": {}}
    for name, opts in modes.items():
        explainer = lime_image.LimeImageExplainer(
            random_state=SEED, feature_selection=opts.get("feature_selection", "auto")
        )
        # lime 0.2.0.1 keeps only the last label's score and local prediction on the
        # explanation; capture every label's surrogate where it is fitted.
        fitted = {}
        fit = explainer.base.explain_instance_with_data

        def capture(data, labels, distances, label, *args, _fit=fit, _out=fitted, **kwargs):
            result = _fit(data, labels, distances, label, *args, **kwargs)
            _out[int(label)] = result
            return result

        explainer.base.explain_instance_with_data = capture
        checksums.clear()
        outputs.clear()
        exp = explainer.explain_instance(
            image,
            recording_classifier,
            top_labels=3,
            hide_color=opts.get("hide_color"),
            num_features=opts.get("num_features", 100000),
            num_samples=NUM_SAMPLES,
            batch_size=32,
            segmentation_fn=lambda img: segments,
        )
        entry = {
            "hide_color": opts.get("hide_color"),
            "num_features": opts.get("num_features", 100000),
            "feature_selection": opts.get("feature_selection", "auto"),
            "top_labels": [int(x) for x in exp.top_labels],
            "labels": {},
        }
        for label in exp.top_labels:
            intercept, local_exp, score, local_pred = fitted[int(label)]
            entry["labels"][str(int(label))] = {
                "intercept": float(intercept),
                "weights": [[int(f), float(w)] for f, w in local_exp],
                "score": float(score),
                "local_pred": float(np.asarray(local_pred).ravel()[0]),
            }
        results["modes"][name] = entry
        if name in ("auto", "hide_black"):
            np.save(OUT / f"preds_{name}.npy", np.concatenate(outputs))
            np.save(OUT / f"checksums_{name}.npy", np.array(checksums, dtype=np.int64))
        if name == "auto":
            # The sample matrix, re-derived the way lime draws it.
            rs = np.random.RandomState(SEED)
            rs.randint(0, 1000)
            data = rs.randint(0, 2, NUM_SAMPLES * n).reshape((NUM_SAMPLES, n))
            data[0, :] = 1
            np.save(OUT / "data.npy", data.astype(np.int8))
            fudged = image.copy()
            for x in np.unique(segments):
                fudged[segments == x] = (
                    np.mean(image[segments == x][:, 0]),
                    np.mean(image[segments == x][:, 1]),
                    np.mean(image[segments == x][:, 2]),
                )
            np.save(OUT / "fudged.npy", fudged)
            label = exp.top_labels[0]
            masks = {
                "pos5": dict(positive_only=True, num_features=5, hide_rest=False),
                "neg3_hide": dict(positive_only=False, negative_only=True, num_features=3, hide_rest=True),
                "both6_minw": dict(positive_only=False, num_features=6, min_weight=0.01),
            }
            results["masks"] = {"label": int(label), "cases": {}}
            for mname, mopts in masks.items():
                temp, mask = exp.get_image_and_mask(label, **mopts)
                np.save(OUT / f"mask_{mname}.npy", mask.astype(np.int32))
                np.save(OUT / f"mask_{mname}_image.npy", np.asarray(temp).astype(np.uint8))
                results["masks"]["cases"][mname] = mopts
    with open(OUT / "results.json", "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {OUT} ({n} superpixels)")


if __name__ == "__main__":
    main()
