//! Replays every committed corpus file through its target (so a regression found by
//! fuzzing, once its input is added under `fuzz/corpus/<target>/`, stays fixed), and
//! checks that the seeds still exercise what their names promise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use gochat_e2ee_fuzzing::{fixtures, run, TARGETS};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_corpus_file_replays_without_a_finding() {
    let mut total = 0;
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {target}");
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let accepted = run(target, &data).unwrap();
            if name.starts_with("valid-") {
                assert!(accepted, "{target}/{name} is no longer accepted: regenerate seeds with `cargo run -p gochat-e2ee-fuzzing --bin fuzz-seeds`");
            }
            if name.starts_with("invalid-") {
                assert!(!accepted, "{target}/{name} was accepted");
            }
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn freshly_generated_seeds_behave_as_named() {
    for (target, (name, data)) in &fixtures::get().seeds {
        let accepted = run(target, data).unwrap();
        assert_eq!(accepted, name.starts_with("valid-"), "{target}/{name}");
    }
}

#[test]
fn every_target_survives_trivial_inputs() {
    for target in TARGETS {
        for data in [&[][..], &[0], &[0xff; 64], &[2; 300]] {
            run(target, data).unwrap();
        }
    }
}

#[test]
fn harness_sealing_matches_the_core() {
    let f = fixtures::get();
    let key = gochat_e2ee::SnapshotKey::new(gochat_e2ee_fuzzing::SNAPSHOT_KEY);
    let snap = f.ratchet_bob.export(&key, &mut gochat_e2ee_fuzzing::rng(9)).expect("export");
    let plain = gochat_e2ee_fuzzing::sealed::open(gochat_e2ee_fuzzing::sealed::KIND_DEVICE, &snap, &[]).unwrap();
    let resealed = gochat_e2ee_fuzzing::sealed::seal(gochat_e2ee_fuzzing::sealed::KIND_DEVICE, &plain, &[]);
    let d = gochat_e2ee::Device::import(&key, &resealed).unwrap();
    let by_core = gochat_e2ee::Device::import(&key, &snap).unwrap();
    assert_eq!(d.state_digest(), by_core.state_digest());
}
