"""Makes the CLIP parity fixtures under testdata/parity/clip/ that
crates/xai-models/tests/clip_parity.rs reads, and (with --full) checks full-size models.

    tools/parity/.venv/bin/python tools/parity/make_clip_fixtures.py          # fixtures
    tools/parity/.venv/bin/python tools/parity/make_clip_fixtures.py --full   # full size

Everything is seeded and made on the CPU in f32. Fixtures (tiny random models, every
parameter re-drawn, LayerNorm scales and biases included, so that no part is an identity):
- hf_tiny/{model.safetensors,config.json}: transformers' CLIPModel, vision hidden 32, 2 heads,
  2 layers, patch 8, image 32; text hidden 32, 2 heads, 2 layers, vocab 600, 16 positions,
  MLP 37, quick_gelu, eos 599 (the largest id, as in CLIP), projection 24. hf_tiny.{image,text}.npy:
  get_image_features / get_text_features of pixels.npy and ids_hf.npy.
- oc_quickgelu.safetensors, oc_gelu.safetensors: open_clip's CLIP (OpenAI layout), ViT width 16,
  head width 8 (2 heads), 2 layers, MLP 48, patch 8, image 32; text width 16, 2 heads, 2 layers,
  vocab 64, context 16; embed 24; quick_gelu=True and False (torch's erf GELU). oc_*.{image,text}.npy:
  encode_image / encode_text of pixels.npy and ids_oc.npy.
- pixels.npy (2, 3, 32, 32) f32; ids_*.npy (3, 16) int64: start, random tokens, end (the
  largest id), zero padding, one row filling the whole context.
- pre_<image>_32.npy: torchvision's CLIP transform (Resize(32, BICUBIC), CenterCrop(32),
  ToTensor, Normalize(CLIP mean, std)) of testdata/preprocess/<image>.png, (3, 32, 32) f32;
  rocket_200x300.clip224.png: Resize(224, BICUBIC) + CenterCrop(224) of the rocket (an
  upscale), as PNG.

--full builds ViT-B/32 and ViT-B/16 with random weights (open_clip and transformers, QuickGELU),
saves them with inputs under /tmp/xai_clip_full (never committed), runs
`cargo run --release -p xai-models --example clip_embed` on each and prints the largest
differences; --bench also times ViT-B/32 image encoding at batch 16 (torch on 2 threads).
"""
import argparse
import json
import pathlib
import subprocess
import time

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms
from transformers import CLIPConfig, CLIPModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "parity" / "clip"
PRE = ROOT / "testdata" / "preprocess"
FULL = pathlib.Path("/tmp/xai_clip_full")
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


EMBEDDINGS = ("class_embedding", "positional_embedding", "position_embedding", "token_embedding")


def randomise(model, seed):
    """Re-draws every parameter: matrices U(-1,1)·√(3/fan_in), embeddings U(-1,1),
    LayerNorm scales 1 + 0.2·U(-1,1), other vectors 0.1·U(-1,1). logit_scale is kept."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "logit_scale" in name:
                continue
            u = torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1
            leaf = name.split(".")[-2:] if name.endswith(".weight") else name.split(".")[-1:]
            embedding = leaf[0] in EMBEDDINGS
            if embedding:
                v = u
            elif p.ndim >= 2:
                # open_clip's projections are (in, out) and used as x @ P.
                transposed = name in ("visual.proj", "text_projection")
                fan_in = p.shape[0] if transposed else int(np.prod(p.shape[1:]))
                v = u * np.sqrt(3.0 / fan_in)
            elif name.endswith("weight"):
                v = 1 + 0.2 * u
            else:
                v = 0.1 * u
            p.copy_(v.to(p.dtype))


def ids(vocab, context, lengths, seed):
    """Rows as CLIP's tokenizer makes them: start (vocab-2), tokens, end (vocab-1), zeros."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        toks = torch.randint(1, vocab - 2, (n,), generator=g).tolist()
        row = [vocab - 2] + toks + [vocab - 1]
        rows.append(row + [0] * (context - len(row)))
    return torch.tensor(rows, dtype=torch.int64)


def hf_model(vision, text, proj, act, seed):
    config = CLIPConfig(
        text_config=dict(
            hidden_size=text["width"], intermediate_size=text["mlp"],
            num_attention_heads=text["heads"], num_hidden_layers=text["layers"],
            vocab_size=text["vocab"], max_position_embeddings=text["context"],
            hidden_act=act, bos_token_id=text["vocab"] - 2, eos_token_id=text["vocab"] - 1,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=vision["width"], intermediate_size=vision["mlp"],
            num_attention_heads=vision["heads"], num_hidden_layers=vision["layers"],
            patch_size=vision["patch"], image_size=vision["image"], hidden_act=act,
        ),
        projection_dim=proj,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    randomise(model, seed)
    return model


def hf_features(model, pixels, text_ids):
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels)
        txt = model.get_text_features(input_ids=text_ids)
    pooled = lambda o: o if isinstance(o, torch.Tensor) else o.pooler_output
    return pooled(img), pooled(txt)


def oc_model(vision, text, embed, quick_gelu, seed):
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(
        embed_dim=embed,
        vision_cfg=dict(
            layers=vision["layers"], width=vision["width"], head_width=vision["width"] // vision["heads"],
            mlp_ratio=vision["mlp"] / vision["width"], patch_size=vision["patch"], image_size=vision["image"],
        ),
        text_cfg=dict(
            context_length=text["context"], vocab_size=text["vocab"], width=text["width"],
            heads=text["heads"], layers=text["layers"], mlp_ratio=text["mlp"] / text["width"],
        ),
        quick_gelu=quick_gelu,
    ).eval()
    randomise(model, seed)
    return model


def oc_features(model, pixels, text_ids):
    with torch.no_grad():
        return model.encode_image(pixels), model.encode_text(text_ids)


def state_dict(model):
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def npy(path, t, dtype=np.float32):
    np.save(path, t.detach().numpy().astype(dtype))


def clip_transform(size):
    return transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
        lambda im: im.convert("RGB"),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def fixtures():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn((2, 3, 32, 32), generator=g)
    npy(OUT / "pixels.npy", pixels)

    vision = dict(width=32, heads=2, layers=2, patch=8, image=32, mlp=37)
    text = dict(width=32, heads=2, layers=2, vocab=600, context=16, mlp=37)
    hf = hf_model(vision, text, 24, "quick_gelu", seed=1)
    hf_ids = ids(600, 16, [3, 9, 14], seed=2)
    npy(OUT / "ids_hf.npy", hf_ids, np.int64)
    hf.save_pretrained(OUT / "hf_tiny", safe_serialization=True)
    for extra in (OUT / "hf_tiny").iterdir():
        if extra.name not in ("model.safetensors", "config.json"):
            extra.unlink()
    img, txt = hf_features(hf, pixels, hf_ids)
    npy(OUT / "hf_tiny.image.npy", img)
    npy(OUT / "hf_tiny.text.npy", txt)

    # Narrower than the Hugging Face model, to keep the fixtures small.
    vision_oc = dict(vision, width=16, mlp=48)
    text_oc = dict(text, width=16, vocab=64, mlp=48)
    oc_ids = ids(64, 16, [2, 7, 14], seed=3)
    npy(OUT / "ids_oc.npy", oc_ids, np.int64)
    for name, quick, seed in [("oc_quickgelu", True, 4), ("oc_gelu", False, 5)]:
        model = oc_model(vision_oc, text_oc, 24, quick, seed)
        save_file(state_dict(model), str(OUT / f"{name}.safetensors"))
        img, txt = oc_features(model, pixels, oc_ids)
        npy(OUT / f"{name}.image.npy", img)
        npy(OUT / f"{name}.text.npy", txt)

    for stem in ["chelsea_300x200", "astronaut_333x517"]:
        x = clip_transform(32)(Image.open(PRE / f"{stem}.png"))
        npy(OUT / f"pre_{stem}_32.npy", x)
    geo = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224),
    ])
    geo(Image.open(PRE / "rocket_200x300.png").convert("RGB")).save(OUT / "rocket_200x300.clip224.png")

    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"fixtures in {OUT}: {total / 1024:.0f} KiB")
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f"  {f.relative_to(OUT)}: {f.stat().st_size / 1024:.1f} KiB")


def run_example(weights, prefix, extra=()):
    cmd = [
        "cargo", "run", "--release", "-q", "-p", "xai-models", "--example", "clip_embed", "--",
        "--weights", str(weights), "--pixels", str(FULL / "pixels.npy"), "--ids", str(FULL / "ids.npy"),
        "--out-image", str(FULL / f"{prefix}.ours.image.npy"), "--out-text", str(FULL / f"{prefix}.ours.text.npy"),
        *extra,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return np.load(FULL / f"{prefix}.ours.image.npy"), np.load(FULL / f"{prefix}.ours.text.npy")


def report(name, ours, ref):
    diff = np.abs(ours - ref.numpy()).max()
    scale = np.abs(ref.numpy()).max()
    print(f"{name}: max abs diff {diff:.3e}, max |reference| {scale:.3e}, relative {diff / scale:.3e}")


def full(bench):
    FULL.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(10)
    pixels = torch.randn((4, 3, 224, 224), generator=g)
    text_ids = ids(49408, 77, [5, 20, 60, 75], seed=11)
    npy(FULL / "pixels.npy", pixels)
    npy(FULL / "ids.npy", text_ids, np.int64)
    text = dict(width=512, heads=8, layers=12, vocab=49408, context=77, mlp=2048)
    for patch in (32, 16):
        vision = dict(width=768, heads=12, layers=12, patch=patch, image=224, mlp=3072)
        oc = oc_model(vision, text, 512, True, seed=20 + patch)
        path = FULL / f"oc_vitb{patch}.safetensors"
        save_file(state_dict(oc), str(path))
        img, txt = oc_features(oc, pixels, text_ids)
        ours = run_example(path, f"oc_vitb{patch}")
        report(f"open_clip ViT-B/{patch} image", ours[0], img)
        report(f"open_clip ViT-B/{patch} text", ours[1], txt)
        if bench and patch == 32:
            x = torch.randn((16, 3, 224, 224), generator=g)
            with torch.no_grad():
                oc.encode_image(x)
                t0 = time.perf_counter()
                oc.encode_image(x)
                dt = time.perf_counter() - t0
            print(f"open_clip ViT-B/32 encode_image batch 16, 2 threads: {dt:.3f} s, {16 / dt:.1f} images/s")
            run_example(path, "bench", ["--bench", "16"])
        del oc
        hf = hf_model(vision, text, 512, "quick_gelu", seed=40 + patch)
        folder = FULL / f"hf_vitb{patch}"
        hf.save_pretrained(folder, safe_serialization=True)
        img, txt = hf_features(hf, pixels, text_ids)
        ours = run_example(folder / "model.safetensors", f"hf_vitb{patch}")
        report(f"transformers ViT-B/{patch} image", ours[0], img)
        report(f"transformers ViT-B/{patch} text", ours[1], txt)
        del hf


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="full-size ViT-B/32 and B/16 against the example")
    ap.add_argument("--bench", action="store_true", help="with --full: images/s of ViT-B/32, batch 16")
    args = ap.parse_args()
    if args.full:
        full(args.bench)
    else:
        fixtures()
