//! `gochat-e2ee demo` runs to completion and never prints a plaintext in the server column.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[test]
fn demo_runs_and_shows_both_views() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gochat-e2ee")).arg("demo").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("prekey message") && text.contains("ratchet message"), "{text}");
    assert!(text.contains("DH step") && text.contains("skipped key") && text.contains("Duplicate"), "{text}");
    for line in text.lines().filter(|l| l.contains(" B ") || l.contains("delivered")) {
        // The server column (the first 40 characters) holds no quoted content.
        let server: String = line.chars().take(40).collect();
        assert!(!server.contains('"'), "server column shows content: {line}");
    }
}
