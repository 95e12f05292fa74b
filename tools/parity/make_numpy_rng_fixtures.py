"""Fixtures for `crates/xai-lime/tests/numpy_rng.rs`: NumPy's default random stream.

What: the outputs of `np.random.SeedSequence`, `np.random.PCG64` and
`np.random.default_rng(seed).standard_normal / .normal` that the Rust port in
`crates/xai-lime/src/segment/numpy_rng.rs` must reproduce bit for bit, plus the ziggurat
tables as NumPy's compiled sampler behaves (measured through the public API, see
`measure_ziggurat`), into `testdata/parity/numpy_rng/`:

  seedseq_seeds.npy       (S,) u64       the seeds below
  seedseq_pool.npy        (S, 4) u32     SeedSequence(seed).pool
  seedseq_state.npy       (S, 8) u32     SeedSequence(seed).generate_state(8)
  pcg64_42_raw.npy        (2000,) u64    PCG64(42).random_raw(2000)
  pcg64_0_raw.npy         (2000,) u64    PCG64(0).random_raw(2000)
  normal_42_64x64.npy     (64, 64) f64   default_rng(42).normal(scale=1e-5, size=(64, 64))
  normal_0_17x23.npy      (17, 23) f64   default_rng(0).normal(scale=2.5, size=(17, 23))
  std_normal_7.npy        (5000,) f64    default_rng(7).standard_normal(5000)
  fingerprints.npy        (F, 5) u64     [seed, kind, n, xor of bits, wrapping sum of bits]
                                         of default_rng(seed).standard_normal(n) (kind 0)
                                         and PCG64(seed).random_raw(n) (kind 1), n = 10**6
  zig_fingerprints.npy    (3, 3) u64     rows ki, wi, fi of NumPy's ziggurat tables:
                                         [xor, wrapping sum, wrapping sum of (i+1)*bits]
                                         of the 256 words; fingerprints only, the tables
                                         themselves stay out of the repository

ki and wi are measured through the public API (`measure_ziggurat`); fi, which the API
cannot reveal exactly, is found in NumPy's compiled `_generator` module as the one run of
256 doubles starting at 1.0, strictly decreasing, ending at exp(-r^2/2) (`find_fi`).

Command (from the repository root):

    tools/parity/.venv/bin/python tools/parity/make_numpy_rng_fixtures.py

Made with NumPy 2.4.6 (the stream is the same for every NumPy >= 1.17; the script prints
the version it ran with).
"""
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "testdata" / "parity" / "numpy_rng"
R = 3.6541528853610087963519472518
MULT = (2549297995355413924 << 64) | 4865540595714422341
MASK128 = (1 << 128) - 1
MULT_INV = pow(MULT, -1, 1 << 128)


def preceding_state(target, inc):
    """The PCG64 state whose next step lands on `target`."""
    return ((target - inc) * MULT_INV) & MASK128


def draw_from_word(bg, gen, word):
    """Makes the next 64-bit output `word` (rotation 0: high half 0, low half `word`),
    draws one standard normal and says whether exactly one output was consumed."""
    inc = 1
    target = word  # high 64 bits 0 -> rotate by 0, output = low 64 bits = word
    bg.state = {
        "bit_generator": "PCG64",
        "state": {"state": preceding_state(target, inc), "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }
    z = gen.standard_normal()
    one_step = bg.state["state"]["state"] == target
    return z, one_step


def measure_ziggurat():
    """NumPy's tables as its compiled sampler uses them.

    With layer i, sign 0 and magnitude 1 the sampler returns wi[i] itself (1 < ki[i] for
    every layer but 1, whose wedge test passes all but never for so thin a sliver). ki[i] is
    the smallest magnitude for which the sampler takes more than one 64-bit word."""
    bg = np.random.PCG64(0)
    gen = np.random.Generator(bg)
    wi = np.zeros(256)
    ki = np.zeros(256, dtype=np.uint64)
    for i in range(256):
        z, _ = draw_from_word(bg, gen, i | (1 << 9))
        wi[i] = z
        lo, hi = 0, 1 << 52  # fast at < ki, slow at >= ki; find ki in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            _, fast = draw_from_word(bg, gen, i | (mid << 9))
            if fast:
                lo = mid + 1
            else:
                hi = mid
        ki[i] = lo
    return wi, ki


def find_fi():
    """fi_double in NumPy's compiled sampler: 256 doubles, 1.0 first, strictly decreasing,
    exp(-r^2/2) last."""
    import numpy.random._generator as g

    blob = Path(g.__file__).read_bytes()
    one, last = np.float64(1.0).tobytes(), np.exp(-0.5 * R * R)
    found = []
    pos = blob.find(one)
    while pos >= 0:
        if pos + 2048 <= len(blob):
            t = np.frombuffer(blob[pos:pos + 2048], dtype="<f8")
            if t[255] == last and np.all(np.diff(t) < 0) and t[255] > 0:
                found.append(t.copy())
        pos = blob.find(one, pos + 1)
    assert len(found) >= 1 and all(np.array_equal(f, found[0]) for f in found), len(found)
    return found[0]


def table_fingerprint(table):
    bits = [int(b) for b in np.ascontiguousarray(table).view(np.uint64)]
    m = (1 << 64) - 1
    xor, total, weighted = 0, 0, 0
    for i, b in enumerate(bits):
        xor ^= b
        total = (total + b) & m
        weighted = (weighted + (i + 1) * b) & m
    return [xor, total, weighted]


def fingerprint(bits):
    bits = np.ascontiguousarray(bits).view(np.uint64)
    return int(np.bitwise_xor.reduce(bits)), int(bits.sum(dtype=np.uint64))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    print("numpy", np.__version__)

    seeds = np.array([0, 1, 7, 42, 12345, 2**32 - 1, 2**32, 2**32 + 5, 2**63 + 99, 2**64 - 1],
                     dtype=np.uint64)
    pools = np.stack([np.random.SeedSequence(int(s)).pool for s in seeds]).astype(np.uint32)
    states = np.stack([np.random.SeedSequence(int(s)).generate_state(8) for s in seeds])
    np.save(OUT / "seedseq_seeds.npy", seeds)
    np.save(OUT / "seedseq_pool.npy", pools)
    np.save(OUT / "seedseq_state.npy", states.astype(np.uint32))

    for seed in (42, 0):
        raw = np.random.PCG64(seed).random_raw(2000).astype(np.uint64)
        np.save(OUT / f"pcg64_{seed}_raw.npy", raw)

    a = np.random.default_rng(42).normal(scale=1e-5, size=(64, 64))
    np.save(OUT / "normal_42_64x64.npy", a)
    b = np.random.default_rng(0).normal(scale=2.5, size=(17, 23))
    np.save(OUT / "normal_0_17x23.npy", b)
    c = np.random.default_rng(7).standard_normal(5000)
    np.save(OUT / "std_normal_7.npy", c)
    print("std_normal_7: |z| > r at", np.flatnonzero(np.abs(c) > R).tolist())

    rows = []
    n = 10**6
    for seed in (42, 7, 0, 2024):
        z = np.random.default_rng(seed).standard_normal(n)
        rows.append([seed, 0, n, *fingerprint(z)])
        print(f"seed {seed}: {int((np.abs(z) > R).sum())} tail draws in {n}")
        raw = np.random.PCG64(seed).random_raw(n).astype(np.uint64)
        rows.append([seed, 1, n, *fingerprint(raw)])
    np.save(OUT / "fingerprints.npy", np.array(rows, dtype=np.uint64))

    wi, ki = measure_ziggurat()
    fi = find_fi()
    prints = [table_fingerprint(t) for t in (ki, wi, fi)]
    np.save(OUT / "zig_fingerprints.npy", np.array(prints, dtype=np.uint64))

    total = sum(p.stat().st_size for p in OUT.glob("*.npy"))
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
