//! Bit-exact parity of `xai_lime::segment::numpy_rng` with NumPy, on fixtures from
//! `tools/parity/make_numpy_rng_fixtures.py`: `SeedSequence` pools and states, `PCG64` raw
//! words, `default_rng(seed).normal / .standard_normal` draws (compared as `f64` bits), the
//! ziggurat tables as NumPy's sampler uses them, and fingerprints of a million draws per seed.

#![allow(clippy::unwrap_used)] // fixtures are ours; a missing one should fail loudly

use std::path::PathBuf;

use ndarray::{Array1, Array2};
use ndarray_npy::read_npy;
use xai_lime::segment::numpy_rng::{
    default_rng_normal, standard_normal, Pcg64, SeedSequence, ZigguratTables, ZIGGURAT_NOR_R,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/parity/numpy_rng")
}

fn npy<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(name: &str) -> ndarray::Array<T, D> {
    read_npy(dir().join(name)).unwrap()
}

/// The first index where two f64 sequences differ in bits, with both values.
fn first_bit_difference<'a>(
    ours: impl IntoIterator<Item = &'a f64>,
    numpy: impl IntoIterator<Item = &'a f64>,
) -> Option<(usize, f64, f64)> {
    ours.into_iter()
        .zip(numpy)
        .enumerate()
        .find(|(_, (a, b))| a.to_bits() != b.to_bits())
        .map(|(i, (a, b))| (i, *a, *b))
}

#[test]
fn seed_sequence_pool_and_state() {
    let seeds: Array1<u64> = npy("seedseq_seeds.npy");
    let pools: Array2<u32> = npy("seedseq_pool.npy");
    let states: Array2<u32> = npy("seedseq_state.npy");
    for (k, &seed) in seeds.iter().enumerate() {
        let s = SeedSequence::new(seed);
        assert_eq!(
            s.pool().as_slice(),
            pools.row(k).to_vec(),
            "pool, seed {seed}"
        );
        assert_eq!(
            s.generate_state(8),
            states.row(k).to_vec(),
            "state, seed {seed}"
        );
    }
}

#[test]
fn pcg64_raw_words() {
    for seed in [42u64, 0] {
        let numpy: Array1<u64> = npy(&format!("pcg64_{seed}_raw.npy"));
        let mut rng = Pcg64::new(seed);
        let ours: Vec<u64> = (0..numpy.len()).map(|_| rng.next_u64()).collect();
        assert_eq!(ours, numpy.to_vec(), "PCG64({seed}).random_raw");
    }
}

#[test]
fn quickshift_noise_64x64() {
    let numpy: Array2<f64> = npy("normal_42_64x64.npy");
    let ours = default_rng_normal(42, 1e-5, (64, 64));
    assert_eq!(ours.dim(), numpy.dim());
    assert_eq!(first_bit_difference(&ours, &numpy), None);
}

#[test]
fn normal_non_square_raster_order() {
    let numpy: Array2<f64> = npy("normal_0_17x23.npy");
    let ours = default_rng_normal(0, 2.5, (17, 23));
    assert_eq!(ours.dim(), (17, 23));
    assert_eq!(first_bit_difference(&ours, &numpy), None);
}

#[test]
fn standard_normal_5000_with_tail() {
    let numpy: Array1<f64> = npy("std_normal_7.npy");
    let mut rng = Pcg64::new(7);
    let ours: Vec<f64> = (0..numpy.len())
        .map(|_| standard_normal(&mut rng))
        .collect();
    assert_eq!(first_bit_difference(&ours, &numpy), None);
    // The fixture reaches the tail (|z| > r only comes from the tail branch).
    assert!(numpy.iter().filter(|z| z.abs() > ZIGGURAT_NOR_R).count() >= 1);
}

/// `[xor, wrapping sum, wrapping sum of (i + 1) · bits]` of a table's 64-bit words.
fn table_fingerprint(words: impl IntoIterator<Item = u64>) -> [u64; 3] {
    let mut f = [0u64; 3];
    for (i, w) in words.into_iter().enumerate() {
        f[0] ^= w;
        f[1] = f[1].wrapping_add(w);
        f[2] = f[2].wrapping_add(w.wrapping_mul(i as u64 + 1));
    }
    f
}

#[test]
fn ziggurat_tables_match_numpy() {
    let t = ZigguratTables::get();
    let numpy: Array2<u64> = npy("zig_fingerprints.npy");
    let ours = [
        table_fingerprint(t.ki),
        table_fingerprint(t.wi.map(f64::to_bits)),
        table_fingerprint(t.fi.map(f64::to_bits)),
    ];
    for (k, name) in ["ki", "wi", "fi"].iter().enumerate() {
        assert_eq!(ours[k].as_slice(), numpy.row(k).to_vec(), "{name}");
    }
}

#[test]
fn million_draw_fingerprints() {
    let rows: Array2<u64> = npy("fingerprints.npy");
    for row in rows.rows() {
        let (seed, kind, n) = (row[0], row[1], row[2] as usize);
        let mut rng = Pcg64::new(seed);
        let (mut xor, mut sum) = (0u64, 0u64);
        for _ in 0..n {
            let bits = if kind == 0 {
                standard_normal(&mut rng).to_bits()
            } else {
                rng.next_u64()
            };
            xor ^= bits;
            sum = sum.wrapping_add(bits);
        }
        assert_eq!(
            (xor, sum),
            (row[3], row[4]),
            "seed {seed}, kind {kind}, n {n}"
        );
    }
}
