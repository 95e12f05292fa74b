"""Full-size parity: torchvision ResNet-18/50 with seeded random weights vs the `xai` CLI.

    bash tools/parity/setup.sh
    cargo build --release
    tools/parity/.venv/bin/python tools/parity/full_parity.py

What it checks (results are printed as Markdown for docs/PARITY.md):
1. Models: torchvision `resnet18` and `resnet50` (weights=None, seed 0, random batch-norm
   statistics) are saved as .safetensors and as a zip-format .pth; the same preprocessed
   inputs go through torch and through `xai classify --save-logits`; max |Δlogit| relative to
   the largest |logit|, and whether the top-5 classes agree.
2. Preprocessing: scikit-image's bundled photographs (PNG and JPEG, colour and grey) go through
   torchvision's evaluation transform (PIL) and through `xai preprocess`; max difference in
   [0, 1] pixel units.
Files go to tools/parity/out/ (ignored by git).
"""
import pathlib
import subprocess

import numpy as np
import skimage.data
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

from common import seeded_resnet, set_deterministic, state_dict_np

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tools" / "parity" / "out"
XAI = ROOT / "target" / "release" / "xai"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "motorcycle_left.png"]


def xai(*args):
    subprocess.run([str(XAI), *map(str, args)], check=True, capture_output=True, text=True)


def main():
    set_deterministic()
    OUT.mkdir(parents=True, exist_ok=True)
    tf = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    data_dir = pathlib.Path(skimage.data.__file__).parent
    photos = [data_dir / p for p in PHOTOS if (data_dir / p).exists()]

    print("### Preprocessing (torchvision on PIL vs `xai preprocess`)\n")
    print("| image | size | max diff, each side decodes the file | max diff, same decoded pixels |")
    print("|---|---|---|---|")
    inputs = []
    weights_for_spec = None
    for photo in photos:
        pil = Image.open(photo)
        ref = tf(pil.convert("RGB"))
        npy = OUT / f"{photo.stem}.torchvision.npy"
        np.save(npy, ref.numpy())
        inputs.append(npy)
        if weights_for_spec is None:
            m = seeded_resnet("resnet18", 0)
            weights_for_spec = OUT / "resnet18.safetensors"
            save_file(state_dict_np(m), str(weights_for_spec))
        # JPEG decoders may differ by ±1 per pixel (libjpeg-turbo in Pillow, zune-jpeg in
        # `image`), so the transform is also compared on Pillow's decoded pixels, saved losslessly.
        decoded = OUT / f"{photo.stem}.pil-decoded.png"
        pil.convert("RGB").save(decoded)
        diffs = []
        for src in (photo, decoded):
            ours = OUT / f"{src.stem}.xai.npy"
            xai("preprocess", "--arch", "resnet18", "--weights", weights_for_spec, "--image", src, "--out", ours)
            diff = (np.load(ours) - ref.numpy()) * np.array(STD, dtype=np.float32)[:, None, None]
            diffs.append(np.abs(diff).max())
        print(f"| {photo.name} | {pil.size[0]}×{pil.size[1]} {pil.mode} | {diffs[0]:.2e} ({diffs[0] * 255:.1f}/255) | {diffs[1]:.2e} |")

    print("\n### Models (torchvision vs `xai classify`, seeded random weights)\n")
    print("| model | weights file | inputs | max abs diff / max abs logit | top-5 equal |")
    print("|---|---|---|---|---|")
    for arch in ["resnet18", "resnet50"]:
        model = seeded_resnet(arch, 0)
        sd = state_dict_np(model)
        files = {"safetensors": OUT / f"{arch}.safetensors", "pth": OUT / f"{arch}.pth"}
        save_file(sd, str(files["safetensors"]))
        torch.save(sd, files["pth"])
        for kind, path in files.items():
            worst, top_ok = 0.0, True
            for npy in inputs:
                x = torch.from_numpy(np.load(npy))[None]
                with torch.no_grad():
                    ref = model(x)[0].numpy()
                out = OUT / f"{arch}.{kind}.{npy.stem}.logits.npy"
                xai("classify", "--arch", arch, "--weights", path, "--image", npy, "--save-logits", out)
                ours = np.load(out)
                worst = max(worst, float(np.abs(ours - ref).max() / np.abs(ref).max()))
                top_ok &= list(np.argsort(-ours, kind="stable")[:5]) == list(np.argsort(-ref, kind="stable")[:5])
            print(f"| {arch} | .{kind} | {len(inputs)} photos | {worst:.2e} | {'yes' if top_ok else 'NO'} |")


if __name__ == "__main__":
    main()
