"""Makes the CAM parity fixtures under testdata/parity/cam/ that crates/xai-cam/tests read.

    bash tools/parity/setup.sh            # once: a venv with torch, torchvision, grad-cam
    tools/parity/.venv/bin/python tools/parity/make_cam_fixtures.py

pytorch-grad-cam (PyPI `grad-cam`) runs on the seeded width-4 ResNets of make_fixtures.py
(testdata/parity/resnet18_tiny.safetensors, resnet50_tiny.safetensors, loaded into
torchvision's own ResNet code) and the two 3×64×64 inputs of testdata/parity/input_64.npy, on
the CPU in float32. Fixtures (float32 unless said):

- <model>.<method>.npy: the final map (2, 64, 64) of every method on `layer4`, targets=None
  (each image's top-1 class), the reference's defaults (AblationCAM batch 32, ScoreCAM 16).
  Final maps are stored as uint16, round(65535 · map) (quantisation ≤ 7.7e-6, far below the
  1e-3 tolerance), which halves their size.
- <model>.<method>.raw.npy: the raw map before the ReLU (2, h, w), recorded from
  get_cam_image.
- resnet18_tiny.<case>.npy: options: several layers (layer3 + layer4), a class target
  (ClassifierOutputTarget(3)), eigen_smooth, aug_smooth, EigenCAM on layer3.
- resnet18_tiny.targets.json: the top-1 classes the reference chose.
- overlay.*: show_cam_on_image(img/255, map, use_rgb=True) on a seeded uint8 image.
- jet_lut.npy: cv2.applyColorMap(arange(256), COLORMAP_JET), BGR, uint8 (256, 3).
- resize.*: cv2.resize (INTER_LINEAR) of a seeded 5×7 map, up and down.
"""
import json
import pathlib

import cv2
import numpy as np
import torch
from safetensors.torch import load_file

from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    EigenGradCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from common import ARCHS, NarrowResNet, set_deterministic

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARITY = ROOT / "testdata" / "parity"
OUT = PARITY / "cam"

METHODS = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "hirescam": HiResCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
    "eigengradcam": EigenGradCAM,
    "ablationcam": AblationCAM,
    "scorecam": ScoreCAM,
}


def load_model(name, arch):
    block, layers = ARCHS[arch]
    sd = load_file(str(PARITY / f"{name}.safetensors"))
    width = sd["conv1.weight"].shape[0]
    classes = sd["fc.weight"].shape[0]
    model = NarrowResNet(block, layers, width, classes)
    model.load_state_dict(sd)
    return model.eval()


def save(name, arr):
    np.save(OUT / name, np.ascontiguousarray(arr).astype(np.float32))


def save_map(name, arr):
    np.save(OUT / name, np.round(np.float64(arr) * 65535).astype(np.uint16))


def run(model, method, layers, x, targets=None, **kw):
    """The final map and the raw per-layer maps (before the ReLU) of one reference run."""
    cam = METHODS[method](model=model, target_layers=[model.get_submodule(l) for l in layers])
    raws = []
    orig = cam.get_cam_image

    def record(*a, **k):
        r = orig(*a, **k)
        raws.append(np.float32(r))
        return r

    cam.get_cam_image = record
    out = cam(input_tensor=x, targets=targets, **kw)
    return np.float32(out), raws


def singular_gap(model, layer, x):
    """S0/S1 of the centred activations per image (EigenCAM is ill-conditioned near 1)."""
    act = {}
    h = model.get_submodule(layer).register_forward_hook(lambda m, i, o: act.__setitem__("a", o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    gaps = []
    for a in act["a"].numpy():
        m = a.reshape(a.shape[0], -1).T
        m = m - m.mean(axis=0)
        s = np.linalg.svd(m, compute_uv=False)
        gaps.append(float(s[0] / s[1]))
    return gaps


def main():
    set_deterministic()
    OUT.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(np.load(PARITY / "input_64.npy"))
    info = {}
    gradcam_map = None
    for name, arch in [("resnet18_tiny", "resnet18"), ("resnet50_tiny", "resnet50")]:
        model = load_model(name, arch)
        with torch.no_grad():
            logits = model(x).numpy()
        info[name] = {
            "top1": [int(i) for i in logits.argmax(-1)],
            "eigen_gap_layer4": singular_gap(model, "layer4", x),
            "eigen_gap_layer3": singular_gap(model, "layer3", x),
        }
        for method in METHODS:
            out, raws = run(model, method, ["layer4"], x)
            save_map(f"{name}.{method}.npy", out)
            if name == "resnet18_tiny" and method == "gradcam":
                gradcam_map = out[0]
            save(f"{name}.{method}.raw.npy", raws[0])
        if name != "resnet18_tiny":
            continue
        cases = {
            "gradcam++.layer3+layer4": ("gradcam++", ["layer3", "layer4"], None, {}),
            "scorecam.layer3+layer4": ("scorecam", ["layer3", "layer4"], None, {}),
            "gradcam.class3": ("gradcam", ["layer4"], [ClassifierOutputTarget(3)] * 2, {}),
            "ablationcam.class3": ("ablationcam", ["layer4"], [ClassifierOutputTarget(3)] * 2, {}),
            "gradcam.layer3.eigen_smooth": ("gradcam", ["layer3"], None, {"eigen_smooth": True}),
            "layercam.layer3.aug_smooth": ("layercam", ["layer3"], None, {"aug_smooth": True}),
            "eigencam.layer3": ("eigencam", ["layer3"], None, {}),
            "layercam.layer2": ("layercam", ["layer2"], None, {}),
        }
        for case, (method, layers, targets, kw) in cases.items():
            out, raws = run(model, method, layers, x, targets, **kw)
            save_map(f"{name}.{case}.npy", out)
            if len(raws) == 1 and not kw.get("aug_smooth"):
                save(f"{name}.{case}.raw.npy", raws[0])

    # show_cam_on_image on a seeded image, with the resnet18 Grad-CAM map of image 0.
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    mask = gradcam_map
    np.save(OUT / "overlay.image.npy", img)
    np.save(OUT / "overlay.rgb.npy", show_cam_on_image(np.float32(img) / 255, mask, use_rgb=True))
    np.save(OUT / "overlay.bgr.npy", show_cam_on_image(np.float32(img) / 255, mask, use_rgb=False))
    np.save(OUT / "jet_lut.npy", cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, :])

    m = rng.random((5, 7), dtype=np.float32)
    save("resize.src.npy", m)
    save("resize.up.npy", cv2.resize(m, (30, 17)))      # (17, 30)
    save("resize.down.npy", cv2.resize(cv2.resize(m, (30, 17)), (4, 3)))  # (3, 4) from (17, 30)

    (OUT / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    print("fixtures written to", OUT)


if __name__ == "__main__":
    main()
