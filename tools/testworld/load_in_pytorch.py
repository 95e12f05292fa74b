"""Loads the test world's models in PyTorch, so the Python references run on the same model.

    tools/parity/.venv/bin/python tools/testworld/load_in_pytorch.py [objects|scenes] [IMAGE.png [XAI_LOGITS.npy]]

With XAI_LOGITS.npy (from `xai classify --arch testworld-<task> --image IMAGE.png
--save-logits XAI_LOGITS.npy`) it also prints the largest difference between PyTorch's logits
and xai's for the same image.

The committed weights (crates/xai-testworld/models/<task>.safetensors) use torchvision's
ResNet-18 parameter names at stem width 8. The PyTorch module is torchvision's own ResNet with
BasicBlocks, built at that width (tools/parity/common.py: NarrowResNet). Inputs: the scene
resized to the model's resolution (models.json), scaled to [0, 1], ImageNet mean/std.
"""
import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))
from common import NarrowResNet  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "crates" / "xai-testworld" / "models"
OBJECTS = ["goldfish", "ball", "star", "flower", "house", "car", "leaf", "mushroom"]
SCENES = ["water", "grass", "sand", "sky", "brick", "snow"]


def load(task):
    card = json.loads((MODELS / "models.json").read_text())[task]
    sd = load_file(str(MODELS / f"{task}.safetensors"))
    width = sd["conv1.weight"].shape[0]
    classes = sd["fc.weight"].shape[0]
    model = NarrowResNet(BasicBlock, [2, 2, 2, 2], width=width, num_classes=classes)
    model.load_state_dict(sd, strict=True)
    return model.eval(), card["config"]["resolution"]


def transform(resolution):
    return transforms.Compose([
        transforms.Resize(resolution), transforms.CenterCrop(resolution), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])


if __name__ == "__main__":
    task = sys.argv[1] if len(sys.argv) > 1 else "objects"
    model, res = load(task)
    names = OBJECTS if task == "objects" else SCENES
    if len(sys.argv) > 2:
        x = transform(res)(Image.open(sys.argv[2]).convert("RGB"))[None]
        with torch.no_grad():
            logits = model(x)[0]
        p = logits.softmax(-1)
        for i in p.argsort(descending=True)[:3]:
            print(f"{names[i]:>10} {p[i].item():.3f}")
        if len(sys.argv) > 3:
            ours = np.load(sys.argv[3]).reshape(-1)
            diff = np.abs(ours - logits.numpy()).max()
            scale = np.abs(logits.numpy()).max()
            print(f"max |xai - torch| logit difference: {diff:.2e} (logit scale {scale:.2f})")
    else:
        print(model)
