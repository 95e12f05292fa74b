"""Parity fixtures for CLIP's modified-ResNet image tower (and a tiny text tower beside it).

    tools/parity/.venv/bin/python tools/parity/make_clip_rn_fixtures.py          # fixtures
    tools/parity/.venv/bin/python tools/parity/make_clip_rn_fixtures.py --full   # RN50 check

Default mode writes testdata/parity/clip_rn/ (seed 0, rerunning rewrites the same numbers up
to torch's CPU kernels), from open_clip's own `CLIP` class (version printed below):

- tiny.safetensors: the WHOLE state dict of
  `CLIP(24, CLIPVisionCfg(layers=(1, 2, 1, 1), width=4, image_size=64, head_width=32),
  CLIPTextCfg(context_length=16, vocab_size=600, width=32, heads=2, layers=2), quick_gelu=True)`:
  image tower `visual.*` (stem 2/2/4 channels, 128 channels into the attention pool, 4 heads
  of 32 (CLIP's default rule would say 128/64 = 2, so the Rust test passes the head count),
  embedding 24, a 2×2 grid + mean token = 5 positional rows) and the text tower
  (`token_embedding`, `positional_embedding`, `transformer.resblocks.{0,1}`, `ln_final`,
  `text_projection`, `logit_scale`). Weights are open_clip's initialisation, then every
  batch-norm's weight, bias, running mean and variance, every LayerNorm's weight and bias and
  every bias are randomised (open_clip zero-initialises each bn3.weight, which would make the
  residual branches vanish, and unit batch-norms would hide folding errors). All float
  tensors are then rounded to float16 and STORED as float16 (half the size); the references
  are computed in float32 from exactly those rounded values, so loading them as f32 loses
  nothing.
- pixels.npy: (2, 3, 64, 64) float32, standard normal.
- image_embeds.npy: `model.encode_image(pixels)` (2, 24), not normalised.
- stem.npy: `visual.stem(pixels)` (after the 2×2 average pool) (2, 4, 16, 16);
  layer4.npy: `visual.layer4` output (2, 128, 2, 2): for debugging a mismatch.
- text_ids.npy: (3, 16) int64 token ids: 598 (start), random ids in 1..597, 599 (end, the
  largest id of each row, where open_clip's argmax pooling reads), then 0 padding; rows of
  5, 16 and 9 tokens. text_embeds.npy: `model.encode_text(text_ids)` (3, 24).

`--full` builds open_clip `RN50-quickgelu` with random weights (same randomisation, float32,
under /tmp, never committed), embeds seeded random 224×224 pixels with open_clip and with
`cargo run --release -p xai-models --example clip_rn_embed`, prints the max abs difference,
then times batch-16 image encoding on CPU, interleaved (torch.set_num_threads(THREADS) beside
RAYON_NUM_THREADS=THREADS for ours).
"""
import argparse
import json
import os
import pathlib
import subprocess
import time

import numpy as np
import open_clip
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "parity" / "clip_rn"
THREADS = 2


def randomise(model, seed):
    """Random batch-norm statistics and affine parameters, LayerNorm parameters and biases."""
    g = torch.Generator().manual_seed(seed)

    def rand(n, lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=g)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(rand(n, 0.5, 1.5))
                m.bias.copy_(rand(n, -0.1, 0.1))
                m.running_mean.copy_(rand(n, -0.1, 0.1))
                m.running_var.copy_(rand(n, 0.5, 1.5))
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(rand(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(rand(m.bias.shape, -0.1, 0.1))
        for name, p in model.named_parameters():
            if name.endswith("bias") and "bn" not in name and "downsample.1" not in name and "ln" not in name:
                p.copy_(rand(p.shape, -0.1, 0.1))
    return model.eval()


def round_to_half(model):
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def state_dict(model, dtype=None):
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v
    return out


def save(name, t):
    a = t.detach().cpu().numpy()
    np.save(OUT / name, a.astype(np.float32) if a.dtype.kind == "f" else a)


def fixtures():
    torch.manual_seed(0)
    model = CLIP(
        embed_dim=24,
        vision_cfg=CLIPVisionCfg(layers=(1, 2, 1, 1), width=4, image_size=64, head_width=32),
        text_cfg=CLIPTextCfg(context_length=16, vocab_size=600, width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    randomise(model, 1)
    round_to_half(model)
    assert model.visual.attnpool.num_heads == 4
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(state_dict(model, torch.float16), str(OUT / "tiny.safetensors"))

    g = torch.Generator().manual_seed(2)
    pixels = torch.randn(2, 3, 64, 64, generator=g)
    ids = torch.zeros(3, 16, dtype=torch.int64)
    for row, length in enumerate([5, 16, 9]):
        ids[row, 0] = 598
        ids[row, 1 : length - 1] = torch.randint(1, 598, (length - 2,), generator=g)
        ids[row, length - 1] = 599
    with torch.no_grad():
        image = model.encode_image(pixels)
        stem = model.visual.stem(pixels)
        layer4 = model.visual.layer4(
            model.visual.layer3(model.visual.layer2(model.visual.layer1(stem)))
        )
        text = model.encode_text(ids)
    save("pixels.npy", pixels)
    save("image_embeds.npy", image)
    save("stem.npy", stem)
    save("layer4.npy", layer4)
    save("text_ids.npy", ids)
    save("text_embeds.npy", text)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"open_clip {open_clip.__version__}, torch {torch.__version__}: wrote {OUT} ({total / 1024:.0f} KiB)")
    print("image_embeds[0, :4]", image[0, :4].tolist(), "text_embeds[0, :4]", text[0, :4].tolist())


def run_ours(weights, pixels, out, iters=0, warmup=0):
    cmd = [
        "cargo", "run", "--release", "-q", "-p", "xai-models", "--example", "clip_rn_embed", "--",
        str(weights), str(pixels), str(out), "--iters", str(iters), "--warmup", str(warmup),
    ]
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    res = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def full(rounds):
    tmp = pathlib.Path("/tmp/clip_rn50_parity")
    tmp.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model("RN50-quickgelu", pretrained=None)
    randomise(model, 1)
    weights = tmp / "rn50_random_visual.safetensors"
    save_file({"visual." + k: v for k, v in state_dict(model.visual).items()}, str(weights))
    g = torch.Generator().manual_seed(2)

    pixels = torch.randn(4, 3, 224, 224, generator=g)
    np.save(tmp / "pixels4.npy", pixels.numpy())
    with torch.no_grad():
        ref = model.encode_image(pixels).numpy()
    run_ours(weights, tmp / "pixels4.npy", tmp / "ours4.npy")
    ours = np.load(tmp / "ours4.npy")
    diff = np.abs(ours - ref).max()
    scale = np.abs(ref).max()
    print(f"RN50 (random weights, 4×224²): max abs diff {diff:.3e}, max |ref| {scale:.3e}, relative {diff / scale:.3e}")

    torch.set_num_threads(THREADS)
    batch = torch.randn(16, 3, 224, 224, generator=g)
    np.save(tmp / "pixels16.npy", batch.numpy())
    torch_ms, our_ms = [], []
    with torch.no_grad():
        model.encode_image(batch)  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            model.encode_image(batch)
            torch_ms.append((time.perf_counter() - t0) * 1e3)
            our_ms.extend(run_ours(weights, tmp / "pixels16.npy", tmp / "ours16.npy", iters=1, warmup=1)["ms"])
    for name, ms in [("open_clip", torch_ms), ("xai", our_ms)]:
        best, med = min(ms), float(np.median(ms))
        print(f"{name:9s} batch 16 @224, {THREADS} threads: median {med:.0f} ms ({16e3 / med:.1f} img/s), best {best:.0f} ms ({16e3 / best:.1f} img/s), runs {[round(m) for m in ms]}")
    print(f"ratio xai/open_clip (median): {np.median(our_ms) / np.median(torch_ms):.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="RN50 parity and throughput (random weights under /tmp)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds in --full")
    args = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(THREADS)
    if args.full:
        full(args.rounds)
    else:
        fixtures()
