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

/// The cargo-fuzz manifest, the target sources and the smoke-run list must name exactly
/// the targets in `TARGETS`, each once, with one well-formed `[[bin]]` block: a broken
/// manifest otherwise only shows up when the nightly fuzz build runs.
#[test]
fn fuzz_manifest_and_smoke_list_match_the_targets() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let blocks: Vec<&str> = manifest.split("[[bin]]").skip(1).collect();
    let mut names = Vec::new();
    for block in &blocks {
        let keys: Vec<(&str, &str)> =
            block.lines().take_while(|l| !l.starts_with('[')).filter_map(|l| l.split_once(" = ")).collect();
        let get = |k: &str| {
            let found: Vec<&str> = keys.iter().filter(|(key, _)| *key == k).map(|(_, v)| *v).collect();
            assert_eq!(found.len(), 1, "[[bin]] block needs exactly one {k}: {block}");
            found[0].trim_matches('"')
        };
        let name = get("name");
        assert_eq!(get("path"), format!("fuzz_targets/{name}.rs"));
        assert_eq!(get("test"), "false");
        assert!(root.join("fuzz").join(get("path")).is_file(), "missing source for {name}");
        names.push(name.to_string());
    }
    let mut expected: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    expected.sort();
    names.sort();
    assert_eq!(names, expected, "fuzz/Cargo.toml [[bin]] names");
    let sources = std::fs::read_dir(root.join("fuzz/fuzz_targets")).unwrap().count();
    assert_eq!(sources, TARGETS.len(), "fuzz/fuzz_targets holds a file per target");
    let smoke = std::fs::read_to_string(root.join("scripts/fuzz-smoke.sh")).unwrap();
    let line = smoke.lines().find(|l| l.starts_with("targets=")).unwrap();
    let mut listed: Vec<String> =
        line.split_once(":-").unwrap().1.trim_end_matches("}\"").split_whitespace().map(str::to_string).collect();
    listed.sort();
    assert_eq!(listed, expected, "scripts/fuzz-smoke.sh default target list");
}
