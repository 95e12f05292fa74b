"""CLIP-Dissect end to end, the reference's pipeline in torch vs `xai dissect`, interleaved.

    bash tools/parity/setup.sh && tools/parity/.venv/bin/pip install open_clip_torch   # once
    cargo build --release --bin xai
    tools/parity/.venv/bin/python tools/bench/bench_dissect.py [--images 200] [--rounds 2] \
        [--threads 2] [--clip RN50]

Both sides get the same files: a torchvision resnet18 with seeded random weights (the target,
layers layer3, layer4, fc), open_clip's `RN50-quickgelu` (or `ViT-B-32-quickgelu` with
`--clip ViT-B/32`) with seeded random weights as the CLIP model, `--images` test-world scenes
as the probe set (`xai testworld generate`), the test world's concepts that the scenes annotate, and the BPE
vocabulary that ships with open_clip. The reference side is CLIP-Dissect's pipeline as its
code runs it (docs/algorithms/dissect.md §1): forward hooks pooling each layer (mean over
H, W; fc as is), ImageNet's evaluation transform for the target, CLIP's transform and
`encode_image` / `encode_text` (bare concepts), row-normalised cosines, soft-WPMI, argmax per
unit, on the CPU in float32. The xai side is one `xai dissect` process (weights loading and
the reports it writes included, with a fresh cache each time). Times are wall clock; the
reference's include loading the weights from the files but not importing torch.

Prints a Markdown table (median of the rounds) and how many units get the same label.
"""
import argparse
import csv
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "parity"))
from make_dissect_fixtures import soft_wpmi  # noqa: E402

BIN = ROOT / "target" / "release" / "xai"
OUT = ROOT / "tools" / "bench" / "out" / "dissect"
LAYERS = ["layer3", "layer4", "fc"]
OPEN_CLIP_NAME = {"RN50": "RN50-quickgelu", "ViT-B/32": "ViT-B-32-quickgelu",
                  "ViT-B/16": "ViT-B-16-quickgelu"}


def setup(args):
    import open_clip

    OUT.mkdir(parents=True, exist_ok=True)
    probe = OUT / f"probe_{args.images}"
    if not (probe / "images").is_dir():
        subprocess.run([str(BIN), "testworld", "generate", "--n", str(args.images), "--out",
                        str(probe)], check=True, capture_output=True)
    torch.manual_seed(0)
    target = torchvision.models.resnet18()
    for m in target.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    save_file({k: v.contiguous() for k, v in target.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(OUT / "resnet18.safetensors"))
    torch.manual_seed(1)
    clip = open_clip.create_model(OPEN_CLIP_NAME[args.clip], pretrained=None)
    tag = args.clip.replace("/", "")
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(OUT / f"clip_{tag}.safetensors"))
    vocab = pathlib.Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    return probe / "images", vocab, tag


def reference(images, concepts, clip_name, tag):
    import open_clip

    t0 = time.perf_counter()
    target = torchvision.models.resnet18()
    target.load_state_dict(load_file(str(OUT / "resnet18.safetensors")), strict=False)
    target.eval()
    clip = open_clip.create_model(OPEN_CLIP_NAME[clip_name], pretrained=None)
    clip.load_state_dict(load_file(str(OUT / f"clip_{tag}.safetensors")))
    clip.eval()
    tok = open_clip.get_tokenizer(OPEN_CLIP_NAME[clip_name])
    clip_tf = open_clip.image_transform(clip.visual.image_size, is_train=False)
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    feats = {l: [] for l in LAYERS}

    def hook(name):
        def f(_m, _i, out):
            feats[name].append(out.mean(dim=[2, 3]) if out.dim() == 4 else out)
        return f

    for l in LAYERS:
        getattr(target, l).register_forward_hook(hook(l))
    img_feats = []
    with torch.no_grad():
        for i in range(0, len(images), 200):
            batch = [Image.open(p).convert("RGB") for p in images[i:i + 200]]
            target(torch.stack([tf(b) for b in batch]))
            img_feats.append(clip.encode_image(torch.stack([clip_tf(b) for b in batch])))
        text = clip.encode_text(tok(concepts))
        img = torch.cat(img_feats)
        img = img / img.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        s = img @ text.T
        labels = {}
        for l in LAYERS:
            sim = soft_wpmi(s, torch.cat(feats[l]))
            labels[l] = [concepts[c] for c in sim.argmax(dim=1).tolist()]
    return time.perf_counter() - t0, labels


def ours(probe, concepts_file, vocab, clip_name, tag):
    out = OUT / "xai_out"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([str(BIN), "dissect", "--target", "resnet18", "--target-weights",
                    str(OUT / "resnet18.safetensors"), "--layers", ",".join(LAYERS),
                    "--clip", clip_name, "--clip-weights", str(OUT / f"clip_{tag}.safetensors"),
                    "--clip-vocab", str(vocab), "--probe", str(probe), "--concepts",
                    str(concepts_file), "--out", str(out)], check=True, capture_output=True)
    dt = time.perf_counter() - t0
    labels = {l: [] for l in LAYERS}
    with open(out / "descriptions.csv") as f:
        for row in csv.DictReader(f):
            labels[row["layer"]].append(row["description"])
    return dt, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clip", default="RN50", choices=sorted(OPEN_CLIP_NAME))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    probe, vocab, tag = setup(args)
    concepts_file = OUT / "concepts.txt"
    # The concepts the generated scenes annotate (one mask file per concept and scene).
    concepts = sorted({m.stem for m in (probe.parent / "concepts").rglob("*.png")})
    concepts_file.write_text("\n".join(concepts) + "\n")
    images = sorted(str(p) for p in probe.rglob("*.png"))
    env_note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    ref_t, our_t = [], []
    for r in range(args.rounds):
        t, ref_labels = reference(images, concepts, args.clip, tag)
        ref_t.append(t)
        t, our_labels = ours(probe, concepts_file, vocab, args.clip, tag)
        our_t.append(t)
        print(f"round {r + 1}/{args.rounds}: reference {ref_t[-1]:.1f} s, xai {our_t[-1]:.1f} s",
              file=sys.stderr, flush=True)
    same = sum(a == b for l in LAYERS for a, b in zip(ref_labels[l], our_labels[l]))
    total = sum(len(ref_labels[l]) for l in LAYERS)
    rm, xm = statistics.median(ref_t), statistics.median(our_t)
    print(f"{env_note}; {len(images)} probe images, {len(concepts)} concepts, CLIP {args.clip}, "
          f"target resnet18 ({', '.join(LAYERS)}), {args.rounds} interleaved rounds\n")
    print("| pipeline | reference (median) | xai (median) | reference / xai | same label |")
    print("|---|---|---|---|---|")
    print(f"| CLIP-Dissect end to end | {rm:.1f} s | {xm:.1f} s | {rm / xm:.2f}× | "
          f"{same}/{total} units |")


if __name__ == "__main__":
    main()
