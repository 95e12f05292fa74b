"""One whole LIME explanation, lime + scikit-image + PyTorch vs xai, interleaved in one run.

    bash tools/parity/setup.sh     # once (torch, torchvision, scikit-image, lime)
    cargo build --release --example bench_lime
    tools/parity/.venv/bin/python tools/bench/bench_lime.py [--arch resnet50] [--rounds 2] \
        [--num-samples 1000] [--batch-size 32]

Both sides: a torchvision ResNet with seeded random weights (exported to safetensors for xai),
scikit-image's astronaut resized to 256 and centre-cropped to 224 (lime's PyTorch tutorial),
quickshift 4/200/0.2, `hide_color=0`, top 5 labels, softmax, the same batch size, all cores
(torch set to the machine's cores). Per round the reference runs first, then xai. Each side's
time is split into segmentation, the model (for the reference: all of `classifier_fn`,
including its ToTensor/Normalize; for xai: the forward passes, with the conversion to model
input reported apart) and the rest (building perturbed images, distances, surrogates).
Prints a Markdown table of medians and the ratio reference / xai.
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
import torch
import torchvision
from lime import lime_image
from PIL import Image
from safetensors.torch import save_file
from skimage import data as skdata
from skimage.segmentation import quickshift
from torchvision import transforms

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "examples" / "bench_lime"


class _Quiet:
    def __enter__(self):
        self.err = sys.stderr
        sys.stderr = open(os.devnull, "w")

    def __exit__(self, *a):
        sys.stderr.close()
        sys.stderr = self.err


def reference(model, picture, num_samples, batch_size):
    norm = transforms.Compose([transforms.ToTensor(),
                               transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    spent = {"model": 0.0, "segment": 0.0}

    def classifier_fn(images):
        t = time.perf_counter()
        x = torch.stack([norm(Image.fromarray(im)) for im in images])
        with torch.no_grad():
            p = torch.softmax(model(x), dim=1).numpy()
        spent["model"] += time.perf_counter() - t
        return p

    def segmentation_fn(image):
        t = time.perf_counter()
        s = quickshift(image, kernel_size=4, max_dist=200, ratio=0.2)
        spent["segment"] += time.perf_counter() - t
        return s

    t = time.perf_counter()
    with _Quiet():
        lime_image.LimeImageExplainer(random_state=0).explain_instance(
            picture, classifier_fn, top_labels=5, hide_color=0, num_samples=num_samples,
            batch_size=batch_size, segmentation_fn=segmentation_fn)
    total = time.perf_counter() - t
    return {"total_ms": total * 1e3, "segment_ms": spent["segment"] * 1e3,
            "model_ms": spent["model"] * 1e3,
            "other_ms": (total - spent["model"] - spent["segment"]) * 1e3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)(weights=None).eval()
    img = Image.fromarray(skdata.astronaut())
    picture = np.asarray(transforms.CenterCrop(224)(transforms.Resize(256)(img)))
    ref_rows, xai_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        weights = tmp / f"{args.arch}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        png = tmp / "picture.png"
        Image.fromarray(picture).save(png)
        for r in range(args.rounds):
            ref_rows.append(reference(model, picture, args.num_samples, args.batch_size))
            out = subprocess.run(
                [str(BIN), "--weights", str(weights), "--arch", args.arch, "--image", str(png),
                 "--num-samples", str(args.num_samples), "--batch-size", str(args.batch_size)],
                check=True, capture_output=True, text=True).stdout
            xai_rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r}: reference {ref_rows[-1]['total_ms']:.0f} ms, xai {xai_rows[-1]['total_ms']:.0f} ms",
                  file=sys.stderr)
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} interleaved rounds, "
          f"load average {load:.1f}\n")
    print("| part | lime + scikit-image + torch | xai | reference / xai |")
    print("|---|---|---|---|")
    r_total, x_total = med(ref_rows, "total_ms"), med(xai_rows, "total_ms")
    print(f"| {args.arch}, {args.num_samples} samples, whole explanation | {r_total:.0f} ms | {x_total:.0f} ms | {r_total / x_total:.2f}× |")
    r_seg, x_seg = med(ref_rows, "segment_ms"), med(xai_rows, "segment_ms")
    print(f"| quickshift | {r_seg:.1f} ms | {x_seg:.1f} ms | {r_seg / max(x_seg, 1e-9):.1f}× |")
    r_model = med(ref_rows, "model_ms")
    x_model = med(xai_rows, "forward_ms") + med(xai_rows, "convert_ms")
    print(f"| model (incl. input conversion) | {r_model:.0f} ms | {x_model:.0f} ms | {r_model / x_model:.2f}× |")
    r_other, x_other = med(ref_rows, "other_ms"), med(xai_rows, "other_ms")
    print(f"| everything else (perturbing, distances, surrogates) | {r_other:.0f} ms | {x_other:.0f} ms | {r_other / max(x_other, 1e-9):.1f}× |")
    x_overhead = x_total - med(xai_rows, "forward_ms") - x_seg
    print(f"\nxai perturbation overhead (all but segmentation and forward passes): "
          f"{x_overhead:.0f} ms = {100 * x_overhead / x_total:.2f}% of the total; "
          f"reference: {100 * (r_total - r_model - r_seg) / r_total:.2f}% (its model time includes ToTensor/Normalize)")


if __name__ == "__main__":
    main()
