//! Stable-toolchain fuzzing: replays every checked-in corpus input through its fuzz body, then
//! runs a bounded, seeded mutation campaign (byte flips, splices and inserted separators,
//! encodings and confusables) from the corpus. Any panic is a finding; the seed and the input
//! are printed so it can be added to the corpus.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mutated inputs per target per run: a few seconds of CI time.
const MUTATIONS: usize = 300_000;

/// Fragments that tend to confuse path parsers.
const TOKENS: &[&[u8]] = &[
    b"/",
    b"..",
    b"%2F",
    b"%2e",
    b"\0",
    b" ",
    b"tenants",
    b"collections",
    b"keys",
    "\u{043e}".as_bytes(),
    "\u{212a}".as_bytes(),
    b"A",
    b"-",
    b"_",
    b"//",
    b"\n",
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "empty corpus for {target}");
    inputs
}

fn mutate(rng: &mut StdRng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=v.len());
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !v.is_empty() => {
                let end = rng.random_range(at..=v.len());
                v.drain(at..end);
            }
            2 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let to = rng.random_range(from..=other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            _ => v.insert(at, rng.random()),
        }
    }
    v
}

fn campaign(target: &str, body: fn(&[u8]) -> bool) {
    let inputs = corpus(target);
    for (path, bytes) in &inputs {
        let r = std::panic::catch_unwind(|| body(bytes));
        assert!(r.is_ok(), "corpus input {} broke {target}", path.display());
    }
    let mut rng = StdRng::seed_from_u64(0xB01C_4EAD);
    let mut accepted = 0;
    for n in 0..MUTATIONS {
        let seed = &inputs[rng.random_range(0..inputs.len())].1;
        let other = &inputs[rng.random_range(0..inputs.len())].1;
        let input = mutate(&mut rng, seed, other);
        match std::panic::catch_unwind(|| body(&input)) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => panic!("{target}: mutation {n} broke an invariant; input {input:?}"),
        }
    }
    // Both sides of the parser were reached, or the campaign tested nothing.
    assert!(
        accepted > MUTATIONS / 100 && accepted < MUTATIONS - MUTATIONS / 100,
        "{target}: {accepted} of {MUTATIONS} mutations accepted"
    );
}

#[test]
fn resource_names() {
    campaign("resource_name", bulkhead_fuzz::resource_name);
}

#[test]
fn records() {
    campaign("record", bulkhead_fuzz::record);
}

#[test]
fn upsert_requests() {
    campaign("upsert_request", bulkhead_fuzz::upsert_request);
}

#[test]
fn arrow_streams() {
    campaign("arrow_stream", bulkhead_fuzz::arrow_stream);
}
