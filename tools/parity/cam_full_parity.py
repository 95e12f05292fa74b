"""Full-size CAM parity: pytorch-grad-cam vs `xai cam` on seeded random-weight torchvision
ResNet-18 and ResNet-50 at 224×224, every method, on scikit-image photographs.

    bash tools/parity/setup.sh
    cargo build --release
    tools/parity/.venv/bin/python tools/parity/cam_full_parity.py [--archs resnet18,resnet50] \
        [--methods all] [--photos chelsea.png,coffee.png]

Both sides get the same preprocessed input (torchvision's evaluation transform on PIL, saved as
a (3, 224, 224) float32 .npy that `xai cam` reads as it is), the same weights (.safetensors),
target layer `layer4`, targets=None (top-1 class), the reference's default batch sizes.
Prints a Markdown table for docs/PARITY.md: max |Δ| of the normalised 224×224 maps and each
side's wall time (xai's includes process start and weight loading). EigenCAM/EigenGradCAM:
LAPACK's SVD sign is arbitrary, so the reference runs with its own sign-corrected projection
(`get_2d_projection_with_sign_correction`, flip when |min| > |max|), which is xai's default
convention (`EigenSign::PeakPositive`).
Files go to tools/parity/out/cam_full/ (ignored by git).
"""
import argparse
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import skimage.data
import torch
from PIL import Image
from pytorch_grad_cam import (AblationCAM, EigenCAM, EigenGradCAM, GradCAM, GradCAMPlusPlus,
                              HiResCAM, LayerCAM, ScoreCAM, XGradCAM)
from safetensors.torch import save_file
from torchvision import transforms

from common import seeded_resnet, set_deterministic, state_dict_np

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tools" / "parity" / "out" / "cam_full"
XAI = ROOT / "target" / "release" / "xai"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
METHODS = {
    "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM, "hirescam": HiResCAM,
    "layercam": LayerCAM, "eigencam": EigenCAM, "eigengradcam": EigenGradCAM,
    "ablationcam": AblationCAM, "scorecam": ScoreCAM,
}


class Quiet:
    def __enter__(self):
        self.err = sys.stderr
        sys.stderr = open(os.devnull, "w")

    def __exit__(self, *a):
        sys.stderr.close()
        sys.stderr = self.err


def use_sign_corrected_projection():
    import pytorch_grad_cam.eigen_cam as ec
    import pytorch_grad_cam.eigen_grad_cam as egc
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    ec.get_2d_projection = get_2d_projection_with_sign_correction
    egc.get_2d_projection = get_2d_projection_with_sign_correction


def main():
    use_sign_corrected_projection()
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--photos", default="chelsea.png,coffee.png")
    args = ap.parse_args()
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    set_deterministic()
    OUT.mkdir(parents=True, exist_ok=True)
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    data_dir = pathlib.Path(skimage.data.__file__).parent
    inputs = []
    for name in args.photos.split(","):
        x = tf(Image.open(data_dir / name).convert("RGB"))
        path = OUT / f"{pathlib.Path(name).stem}.npy"
        np.save(path, x.numpy())
        inputs.append((path, x))

    print("| model | method | photos | max abs diff, normalised 224×224 map | reference s | xai s |")
    print("|---|---|---|---|---|---|")
    for arch in args.archs.split(","):
        model = seeded_resnet(arch, 0)
        weights = OUT / f"{arch}.safetensors"
        save_file(state_dict_np(model), str(weights))
        for method in methods:
            worst, t_ref, t_xai = 0.0, 0.0, 0.0
            for path, x in inputs:
                cam = METHODS[method](model=model, target_layers=[model.layer4])
                t = time.perf_counter()
                with Quiet():
                    ref = cam(input_tensor=x[None], targets=None)[0]
                t_ref += time.perf_counter() - t
                out = OUT / f"{arch}.{method}"
                t = time.perf_counter()
                subprocess.run([str(XAI), "cam", "--method", method, "--arch", arch,
                                "--weights", str(weights), "--image", str(path), "--out", str(out),
                                "--no-progress"], check=True, capture_output=True, text=True)
                t_xai += time.perf_counter() - t
                ours = np.load(out / f"{path.stem}.{method}.npy")
                diff = float(np.abs(ours - ref).max())
                worst = max(worst, diff)
            print(f"| {arch} | {method} | {len(inputs)} | {worst:.2e} | {t_ref:.1f} | {t_xai:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
