"""Writes crates/xai-models/data/imagenet_classes.txt from torchvision's own metadata.

Run with the parity venv: tools/parity/.venv/bin/python tools/labels/make_imagenet_labels.py
The class names are torchvision's `_IMAGENET_CATEGORIES` (the names its weights' `meta`
report), one per line, in class-index order.
"""
import pathlib

from torchvision.models._meta import _IMAGENET_CATEGORIES

out = pathlib.Path(__file__).resolve().parents[2] / "crates/xai-models/data/imagenet_classes.txt"
assert len(_IMAGENET_CATEGORIES) == 1000
out.write_text("\n".join(_IMAGENET_CATEGORIES) + "\n")
print(f"wrote {out} ({len(_IMAGENET_CATEGORIES)} classes)")
