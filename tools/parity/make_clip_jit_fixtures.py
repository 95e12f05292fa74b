"""TorchScript fixtures for CLIP: the `.pt` files OpenAI's `clip.load` caches are TorchScript
archives (`torch.jit.save` of the traced model), not `torch.save` checkpoints.

    tools/parity/.venv/bin/python tools/parity/make_clip_jit_fixtures.py

Writes testdata/parity/clip_jit/, read by crates/xai-models/tests/clip_jit_parity.rs, built
with OpenAI's own model code (`clip.model`, PyPI package openai-clip), traced with
`torch.jit.trace(model, (pixels, ids))`, converted to float16 (as OpenAI's published files
are) and saved with `torch.jit.save`:

- rn_tiny.pt: exactly the weights of testdata/parity/clip_rn/tiny.safetensors (already
  float16-exact), so the Rust test checks every tensor against that file and the embeddings
  against clip_rn/image_embeds.npy and text_embeds.npy. OpenAI's rule would give the
  attention pool 128·32/64 = 2 heads; the fixture uses 4 (set before tracing), as clip_rn does.
- vit_tiny.pt: a new seeded random ViT CLIP: image 32, patch 8, width 64, 1 layer, 4 heads
  (OpenAI's rule would say 1); text width 32, 2 heads, 2 layers, vocab 600, context 16;
  embed 24. Every LayerNorm weight and bias and every bias is randomised too. Weights are
  rounded to float16 and the references computed in float32 from the rounded values:
  vit_tiny.image.npy = encode_image(clip/pixels.npy), vit_tiny.text.npy =
  encode_text(clip_rn/text_ids.npy).
- names.json: the tensor names each archive's `state_dict()` gives.
"""
import json
import pathlib

import numpy as np
import torch
from clip import model as cm
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "parity" / "clip_jit"


def npy(path):
    return torch.from_numpy(np.load(path))


def save_traced(model, inputs, path):
    model.eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs, check_trace=False, _store_inputs=False)
    traced = traced.half()
    torch.jit.save(traced, str(path))
    loaded = torch.jit.load(str(path), map_location="cpu")
    return sorted(loaded.state_dict().keys())


def rn_tiny():
    state = {k: v.float() for k, v in load_file(ROOT / "testdata/parity/clip_rn/tiny.safetensors").items()}
    model = cm.CLIP(24, 64, (1, 2, 1, 1), 4, None, 16, 600, 32, 2, 2)
    model.visual.attnpool.num_heads = 4
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()
    pixels = npy(ROOT / "testdata/parity/clip_rn/pixels.npy")
    ids = npy(ROOT / "testdata/parity/clip_rn/text_ids.npy")
    with torch.no_grad():
        image = model.encode_image(pixels)
        text = model.encode_text(ids)
    ref_image = npy(ROOT / "testdata/parity/clip_rn/image_embeds.npy")
    ref_text = npy(ROOT / "testdata/parity/clip_rn/text_embeds.npy")
    print("rn_tiny: OpenAI code vs open_clip fixture, image", (image - ref_image).abs().max().item(),
          "text", (text - ref_text).abs().max().item())
    return save_traced(model, (pixels, ids), OUT / "rn_tiny.pt")


def vit_tiny():
    torch.manual_seed(0)
    model = cm.CLIP(24, 32, 1, 64, 8, 16, 600, 32, 2, 2)
    model.visual = cm.VisionTransformer(32, 8, 64, 1, 4, 24)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "ln_" in name and name.endswith(".weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * (torch.rand(p.shape, generator=g) - 0.5))
            elif name == "logit_scale":
                continue
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5))
        for p in model.parameters():
            p.copy_(p.half().float())
    model.eval()
    pixels = npy(ROOT / "testdata/parity/clip/pixels.npy")
    ids = npy(ROOT / "testdata/parity/clip_rn/text_ids.npy")
    with torch.no_grad():
        np.save(OUT / "vit_tiny.image.npy", model.encode_image(pixels).numpy().astype(np.float32))
        np.save(OUT / "vit_tiny.text.npy", model.encode_text(ids).numpy().astype(np.float32))
    return save_traced(model, (pixels, ids), OUT / "vit_tiny.pt")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    print("torch", torch.__version__)
    names = {"rn_tiny": rn_tiny(), "vit_tiny": vit_tiny()}
    (OUT / "names.json").write_text(json.dumps(names, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f.name, f.stat().st_size)


if __name__ == "__main__":
    main()
