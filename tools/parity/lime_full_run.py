"""Full LIME runs, lime + scikit-image + PyTorch against `xai lime`, on the test world's
`objects` model loaded in PyTorch (tools/testworld/load_in_pytorch.py).

Both sides explain the same picture (the image resized and centre-cropped to the model's
resolution) with lime's defaults: quickshift 4/200/0.2, mean-colour hiding, kernel width 0.25,
top 5 labels, softmax probabilities, and `random_state=seed` ↔ `--seed seed`. xai draws the
same sample matrix as NumPy's RandomState, so wherever the two quickshift label maps are equal
(scikit-image's tie-breaking noise comes from a generator xai does not port), the runs are the
same up to float32 model noise. Reported per image: whether the superpixels are identical,
top-label agreement, the overlap of the top-5 superpixels by |weight|, the correlation of the
weights and the largest weight difference.

    cargo build --release
    tools/parity/.venv/bin/python tools/parity/lime_full_run.py --seeds 0,1 --num-samples 1000
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch
from lime import lime_image
from PIL import Image
from torchvision import transforms

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "testworld"))
from load_in_pytorch import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=None, help="folder of images (default: 8 generated test-world scenes)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--xai", default=str(ROOT / "target" / "release" / "xai"))
    args = ap.parse_args()
    model, res = load("objects")
    norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    torch.set_num_threads(2)

    def classifier_fn(images):
        x = torch.stack([norm(Image.fromarray(im)) for im in images])
        with torch.no_grad():
            return torch.softmax(model(x), dim=1).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if args.images:
            folder = pathlib.Path(args.images)
        else:
            subprocess.run([args.xai, "testworld", "generate", "--n", "8", "--seed", "900000",
                            "--out", str(tmp / "world")], check=True, capture_output=True)
            folder = tmp / "world" / "images"
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        rows = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            out = tmp / f"xai_{seed}"
            subprocess.run([args.xai, "lime", "--image", str(folder), "--seed", str(seed),
                            "--num-samples", str(args.num_samples), "--out", str(out), "--no-progress"],
                           check=True, capture_output=True)
            for path in images:
                pic = transforms.CenterCrop(res)(transforms.Resize(res)(Image.open(path).convert("RGB")))
                pic = np.asarray(pic)
                exp = lime_image.LimeImageExplainer(random_state=seed).explain_instance(
                    pic, classifier_fn, top_labels=5, num_samples=args.num_samples, batch_size=32)
                ours = json.loads((out / f"{path.stem}.lime.json").read_text())
                seg_ours = np.load(out / f"{path.stem}.segments.npy")
                same_segments = seg_ours.shape == exp.segments.shape and bool((seg_ours == exp.segments).all())
                label = exp.top_labels[0]
                ref_w = dict(exp.local_exp[label])
                our_exp = next(e for e in ours["explanations"] if e["label"] == label) if label in ours["labels"] else None
                row = {"image": path.name, "seed": seed, "same_segments": same_segments,
                       "superpixels": [int(exp.segments.max()) + 1, ours["superpixels"]],
                       "same_top_label": ours["labels"][0] == int(label),
                       "same_top5_labels": ours["labels"] == [int(x) for x in exp.top_labels]}
                if our_exp is not None:
                    our_w = {w["superpixel"]: w["weight"] for w in our_exp["weights"]}
                    top_ref = [f for f, _ in exp.local_exp[label][:5]]
                    top_ours = [w["superpixel"] for w in our_exp["weights"][:5]]
                    row["top5_overlap"] = len(set(top_ref) & set(top_ours))
                    if same_segments:
                        keys = sorted(ref_w)
                        a = np.array([ref_w[k] for k in keys])
                        b = np.array([our_w.get(k, 0.0) for k in keys])
                        row["weight_corr"] = float(np.corrcoef(a, b)[0, 1])
                        row["max_weight_diff"] = float(np.abs(a - b).max())
                        row["max_weight"] = float(np.abs(a).max())
                rows.append(row)
                print(json.dumps(row))
        same = [r for r in rows if r["same_segments"]]
        print(f"\n{len(rows)} runs; identical superpixels in {len(same)}; "
              f"same top label in {sum(r['same_top_label'] for r in rows)}; "
              f"same top-5 labels in {sum(r['same_top5_labels'] for r in rows)}; "
              f"mean top-5 superpixel overlap {np.mean([r.get('top5_overlap', 0) for r in rows]):.2f}/5")
        if same:
            print(f"where superpixels are identical: min weight correlation "
                  f"{min(r['weight_corr'] for r in same):.6f}, largest weight difference "
                  f"{max(r['max_weight_diff'] for r in same):.2e} (largest weight {max(r['max_weight'] for r in same):.2e})")


if __name__ == "__main__":
    main()
