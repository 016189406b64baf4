//! The committed test vectors (`test-vectors/`) verify: independent re-derivation of
//! every value, and byte-for-byte regeneration through the library. A damaged copy is
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gochat-e2ee")).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn committed_vectors_verify() {
    let dir = committed();
    let (ok, text) = run(&["vectors", "verify", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["vectors", "check-fresh", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{text}");
}

#[test]
fn a_changed_intermediate_or_output_is_reported() {
    let tmp = std::env::temp_dir().join(format!("gochat-e2ee-vectors-{}", std::process::id()));
    let (ok, text) = run(&["vectors", "generate", "--out", tmp.to_str().unwrap()]);
    assert!(ok, "{text}");
    let path = tmp.join("ratchet_conversation.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
    let aead_key = file["intermediates"]["messages"][2]["aead_key"].as_str().unwrap().to_owned();
    let first = if aead_key.starts_with('0') { '1' } else { '0' };
    let flipped = format!("{first}{}", aead_key.get(1..).unwrap());
    file["intermediates"]["messages"][2]["aead_key"] = serde_json::Value::String(flipped);
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("intermediates.messages[2].aead_key"), "{text}");

    // An output byte changed: the model refuses it, and so does the freshness check.
    std::fs::write(&path, &original).unwrap();
    let snap = tmp.join("snapshot.json");
    let mut file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    let s = file["outputs"]["snapshot"].as_str().unwrap().to_owned();
    let last = if s.ends_with('0') { '1' } else { '0' };
    file["outputs"]["snapshot"] = serde_json::Value::String(format!("{}{last}", &s[..s.len() - 1]));
    std::fs::write(&snap, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("snapshot"), "{text}");
    let (ok, _) = run(&["vectors", "check-fresh", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_changed_scripted_vector_is_reported() {
    let tmp = std::env::temp_dir().join(format!("gochat-e2ee-scripted-{}", std::process::id()));
    let (ok, text) = run(&["vectors", "generate", "--out", tmp.to_str().unwrap()]);
    assert!(ok, "{text}");
    let edit = |name: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let path = tmp.join(name);
        let original = std::fs::read_to_string(&path).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
        change(&mut file);
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
        original
    };

    // A skipped key inside a snapshot's state, as listed field by field.
    let original = edit("snapshot_skipped_keys.json", &|file| {
        let fields = file["intermediates"]["snapshots"][0]["state_fields"].as_array_mut().unwrap();
        let f =
            fields.iter_mut().find(|f| f["field"].as_str().unwrap().ends_with("skipped_keys[0].message_key")).unwrap();
        f["value"] = serde_json::Value::String("00".repeat(32));
    });
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("intermediates.snapshots[0].state_fields["), "{text}");
    std::fs::write(tmp.join("snapshot_skipped_keys.json"), original).unwrap();

    // A refused delivery claimed to be another refusal.
    edit("dropped_chain.json", &|file| {
        let results = file["outputs"]["results"].as_array_mut().unwrap();
        let lost = results.iter_mut().find(|r| r["error"] == "MessageLost").unwrap();
        lost["error"] = serde_json::Value::String("Duplicate".into());
    });
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("dropped_chain: outputs.results["), "{text}");
    let (ok, _) = run(&["vectors", "check-fresh", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_changed_attachment_vector_is_reported() {
    let tmp = std::env::temp_dir().join(format!("gochat-e2ee-attachments-{}", std::process::id()));
    let (ok, text) = run(&["vectors", "generate", "--out", tmp.to_str().unwrap()]);
    assert!(ok, "{text}");
    let path = tmp.join("attachments.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let write = |file: &serde_json::Value| {
        std::fs::write(&path, serde_json::to_string_pretty(file).unwrap() + "\n").unwrap();
    };

    // A segment nonce with its "last" flag cleared.
    let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
    let n = file["intermediates"]["cases"][3]["nonces"][4].as_str().unwrap().to_owned();
    assert!(n.ends_with("01"), "the last segment's nonce ends with 0x01: {n}");
    file["intermediates"]["cases"][3]["nonces"][4] = serde_json::Value::String(format!("{}00", &n[..n.len() - 2]));
    write(&file);
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("attachments: intermediates.cases[3].nonces[4]"), "{text}");

    // A refusal claimed to be another one.
    let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
    let refusals = file["outputs"]["refusals"].as_array_mut().unwrap();
    let trailing = refusals.iter_mut().find(|r| r["name"] == "trailing_byte").unwrap();
    assert_eq!(trailing["error"], "TrailingData");
    trailing["error"] = serde_json::Value::String("Truncated".into());
    write(&file);
    let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("attachments: outputs.refusals["), "{text}");
    let (ok, _) = run(&["vectors", "check-fresh", "--dir", tmp.to_str().unwrap()]);
    assert!(!ok);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_changed_store_vector_is_reported() {
    let tmp = std::env::temp_dir().join(format!("gochat-e2ee-store-vectors-{}", std::process::id()));
    let (ok, text) = run(&["vectors", "generate", "--out", tmp.to_str().unwrap()]);
    assert!(ok, "{text}");
    let flip_last = |s: &str| format!("{}{}", &s[..s.len() - 1], if s.ends_with('0') { '1' } else { '0' });

    // A keyslot's Argon2id output, then a record's key hash.
    for (file_name, pointer, expected) in [
        (
            "store_keyslot.json",
            "/intermediates/slots/1/argon2id_output",
            "store_keyslot: intermediates.slots[1].argon2id_output",
        ),
        ("store_records.json", "/outputs/records/1/key_hash", "store_records: outputs.records[1].key_hash"),
        ("store_export.json", "/outputs/container", "store_export: outputs.container"),
        ("store_inbox.json", "/outputs/entries/2/entry", "store_inbox: outputs.entries[2].entry"),
    ] {
        let path = tmp.join(file_name);
        let original = std::fs::read_to_string(&path).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
        let v = file.pointer(pointer).unwrap().as_str().unwrap().to_owned();
        *file.pointer_mut(pointer).unwrap() = serde_json::Value::String(flip_last(&v));
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
        let (ok, text) = run(&["vectors", "verify", "--dir", tmp.to_str().unwrap()]);
        assert!(!ok);
        assert!(text.contains(expected), "{text}");
        std::fs::write(&path, original).unwrap();
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
