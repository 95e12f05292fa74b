"""Makes the small parity fixtures under testdata/ that the Rust tests read.

    bash tools/parity/setup.sh            # once: a venv with torch, torchvision, scikit-image
    tools/parity/.venv/bin/python tools/parity/make_fixtures.py

Everything is seeded; running it again rewrites the same numbers (up to torch's own CPU
kernels). Fixtures:
- testdata/parity/resnet18_tiny.{safetensors,pth}: torchvision's ResNet-18 structure and
  names, stem width 4, 10 classes, seed 0 (the .pth is a plain zip-format state dict).
- testdata/parity/resnet18_tiny_places.pth.tar: the Places365 checkpoint format (legacy
  non-zip torch.save of {epoch, arch, state_dict with `module.` prefixes, best_prec1}),
  same structure, 365 classes, seed 1.
- testdata/parity/resnet50_tiny.safetensors: ResNet-50 structure, width 4, 10 classes, seed 2.
- testdata/parity/input_64.npy: two 3×64×64 inputs; <model>.<layer>.npy: reference outputs;
  resnet18_tiny.input_grad.npy: the gradient of logit 3 with respect to the input.
- testdata/preprocess/*.png: small real photographs (from scikit-image's bundled data,
  resized) and torchvision's Resize(256)+CenterCrop(224) of each, as PNG;
  exif_orientation6.jpg, a tiny JPEG whose EXIF orientation asks for a rotation.
"""
import json
import pathlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

from common import layer_outputs, seeded_resnet, set_deterministic, state_dict_np

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARITY = ROOT / "testdata" / "parity"
PRE = ROOT / "testdata" / "preprocess"
LAYERS = ["maxpool", "layer1", "layer2.0", "layer3", "layer4", "layer4.1", "avgpool", "fc"]


def save_npy(path, t):
    np.save(path, t.numpy().astype(np.float32))


def model_fixture(name, arch, seed, classes, x, legacy_places=False):
    model = seeded_resnet(arch, seed, width=4, num_classes=classes)
    sd = state_dict_np(model)
    if legacy_places:
        ckpt = {
            "epoch": 90,
            "arch": arch,
            "state_dict": {"module." + k: v for k, v in sd.items()},
            "best_prec1": 54.7,
        }
        torch.save(ckpt, PARITY / f"{name}.pth.tar", _use_new_zipfile_serialization=False)
    else:
        save_file(sd, str(PARITY / f"{name}.safetensors"))
    outs = layer_outputs(model, x, [l for l in LAYERS if l != "fc"])
    for layer, t in outs.items():
        if layer == "avgpool":
            t = t.flatten(1)
        save_npy(PARITY / f"{name}.{layer}.npy", t)
    return model, sd


def input_grad_fixture():
    """d(sum of logit 3)/d(input) of resnet18_tiny on input_64 (max-pool gradients included)."""
    model = seeded_resnet("resnet18", 0, width=4, num_classes=10)
    x = torch.from_numpy(np.load(PARITY / "input_64.npy")).requires_grad_(True)
    model(x)[:, 3].sum().backward()
    save_npy(PARITY / "resnet18_tiny.input_grad.npy", x.grad)


def exif_fixture():
    """A 40×20 JPEG (red left half, blue right half) whose EXIF says "rotate 90° clockwise to
    display" (Orientation 6): a reader that honours it sees a 20×40 image, red on top."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(PRE / "exif_orientation6.jpg", quality=95, exif=exif.tobytes())


def main():
    set_deterministic()
    PARITY.mkdir(parents=True, exist_ok=True)
    PRE.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(2, 3, 64, 64, generator=g)
    save_npy(PARITY / "input_64.npy", x)

    _, sd18 = model_fixture("resnet18_tiny", "resnet18", 0, 10, x)
    torch.save(sd18, PARITY / "resnet18_tiny.pth")
    model_fixture("resnet18_tiny_places", "resnet18", 1, 365, x, legacy_places=True)
    model_fixture("resnet50_tiny", "resnet50", 2, 10, x)
    input_grad_fixture()

    # Preprocessing: small photographs with different aspect ratios, both up- and downscaled.
    import skimage.data

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    cases = {
        "chelsea_300x200": (skimage.data.chelsea(), (300, 200)),
        "coffee_420x280": (skimage.data.coffee(), (420, 280)),
        "astronaut_333x517": (skimage.data.astronaut(), (333, 517)),
        "rocket_200x300": (skimage.data.rocket(), (200, 300)),
    }
    manifest = {}
    for name, (arr, size) in cases.items():
        img = Image.fromarray(arr).convert("RGB").resize(size, Image.LANCZOS)
        img.save(PRE / f"{name}.png")
        tf(img).save(PRE / f"{name}.torchvision.png")
        manifest[name] = {"input": f"{name}.png", "expected": f"{name}.torchvision.png", "size": size}
    (PRE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    exif_fixture()
    print("fixtures written to", PARITY, "and", PRE)


if __name__ == "__main__":
    main()
