"""Fixtures for CLIP-Dissect's similarity stage (crates/xai-dissect/tests/similarity_parity.rs).

The five functions are written here in torch, op for op as CLIP-Dissect's `similarity.py`
(commit 21e7697) computes them, on CPU in float32, with two changes that make the reference
deterministic (docs/algorithms/dissect.md §1.5, §6):

- the top-k images of a unit are taken with a *stable* descending sort (ties, e.g. ReLU
  zeros, by image index) instead of `torch.topk`, whose order among ties is unspecified;
- soft_wpmi and wpmi are also saved as computed in float64 (the float32 reference is only
  accurate to ~1e-4 there);
- rank_reorder is saved without its random baseline (one positive scalar per unit that the
  reference draws with `torch.randperm`): `raw = -err / avg**scale_p`, score = raw / base.

Run: tools/parity/.venv/bin/python tools/parity/make_dissect_fixtures.py
Writes testdata/parity/dissect/*.npy (S, A and the five outputs).
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "parity", "dissect")
N, C, U = 300, 40, 16


def stable_top(target, k):
    order = torch.sort(target, dim=0, descending=True, stable=True)
    return order.values[:k], order.indices[:k]


def soft_wpmi(clip, target, top_k=100, a=10, lam=1, min_prob=1e-7, p_start=0.998, p_end=0.97):
    clip = torch.nn.functional.softmax(a * clip, dim=1)
    _, inds = stable_top(target, top_k)
    p_in = p_start - (torch.arange(start=0, end=top_k) / top_k * (p_start - p_end)).unsqueeze(1)
    rows = []
    for u in range(target.shape[1]):
        cur = clip.gather(0, inds[:, u : u + 1].expand(-1, clip.shape[1]))
        cur = 1 + p_in * (cur - 1)
        rows.append(torch.sum(torch.log(cur + min_prob), dim=0, keepdim=True))
    l = torch.cat(rows, dim=0)
    prior = torch.logsumexp(l, dim=0, keepdim=True) - torch.log(l.shape[0] * torch.ones([1]))
    return l - lam * prior


def wpmi(clip, target, top_k=28, a=2, lam=0.6, min_prob=1e-7):
    clip = torch.nn.functional.softmax(a * clip, dim=1)
    _, inds = stable_top(target, top_k)
    rows = []
    for u in range(target.shape[1]):
        cur = clip.gather(0, inds[:, u : u + 1].expand(-1, clip.shape[1]))
        rows.append(torch.sum(torch.log(cur + min_prob), dim=0, keepdim=True))
    l = torch.cat(rows, dim=0)
    prior = torch.logsumexp(l, dim=0, keepdim=True) - torch.log(l.shape[0] * torch.ones([1]))
    return l - lam * prior


def cos(clip, target):
    clip = clip / torch.norm(clip, p=2, dim=0, keepdim=True)
    target = target / torch.norm(target, p=2, dim=0, keepdim=True)
    return target.T @ clip


def cos3(clip, target, min_norm=1e-3):
    clip = (clip - clip.mean(dim=0, keepdim=True)) ** 3
    target = (target - target.mean(dim=0, keepdim=True)) ** 3
    clip = clip / torch.clip(torch.norm(clip, p=2, dim=0, keepdim=True), min_norm)
    target = target / torch.clip(torch.norm(target, p=2, dim=0, keepdim=True), min_norm)
    return target.T @ clip


def rank_reorder_raw(clip, target, p=3, top_fraction=0.05, scale_p=0.5):
    top_n = int(target.shape[0] * top_fraction)
    vals, inds = stable_top(target, top_n)
    out = []
    for u in range(target.shape[1]):
        q = clip.gather(0, inds[:, u : u + 1].expand([-1, clip.shape[1]]))
        avg = torch.mean(q, dim=0, keepdim=True)
        ranks = torch.argsort(torch.argsort(q, dim=0), dim=0)
        t = vals[:, u : u + 1]
        asc = torch.flip(t, dims=[0])
        reorg = asc.expand(-1, clip.shape[1]).gather(dim=0, index=ranks)
        err = torch.mean(torch.abs(t - reorg) ** p, dim=0, keepdim=True)
        out.append(-err / avg**scale_p)
    return torch.cat(out, dim=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    # Cosine-like concept similarities, positive so rank_reorder's avg**0.5 is defined.
    s = 0.2 + 0.1 * torch.rand(N, C, generator=g)
    # ReLU'd activations with many exact zeros (ties), one dead unit avoided for cos.
    a = torch.relu(torch.randn(N, U, generator=g) - 0.8)
    a[0] += 0.5
    outs = {
        "S": s,
        "A": a,
        "soft_wpmi": soft_wpmi(s, a),
        "wpmi": wpmi(s, a),
        "cos": cos(s, a),
        "cos3": cos3(s, a),
        "rank_reorder_raw": rank_reorder_raw(s, a),
        # soft-WPMI subtracts two sums of 100 logs (~ -360 each): float32 keeps ~1e-4 of the
        # difference (doc §6), so the same function in float64 is saved as well.
        "soft_wpmi_f64": soft_wpmi(s.double(), a.double()),
        "wpmi_f64": wpmi(s.double(), a.double()),
    }
    for name, t in outs.items():
        np.save(os.path.join(OUT, f"{name}.npy"), t.numpy().astype(np.float32))
    print({k: tuple(v.shape) for k, v in outs.items()})


if __name__ == "__main__":
    with torch.no_grad():
        main()
