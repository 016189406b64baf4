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

#[test]
fn the_group_and_channel_demos_show_revocation_and_refusals() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gochat-e2ee")).arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // The removed member reads nothing sent after the removal; a tampered commit is refused.
    assert!(text.contains("carol cannot read it: MissingSenderKey"), "{text}");
    assert!(text.contains("A tampered copy of the commit is refused: BadSignature"), "{text}");
    // A replayed post is refused; the removed subscriber reads nothing new.
    assert!(text.contains("Ana refuses it (StaleSequence)"), "{text}");
    assert!(text.contains("ben cannot read it: MissingSenderKey"), "{text}");
    // The server's view never holds content.
    for line in text.lines() {
        if let Some(start) = line.find("[server relays") {
            let end = line[start..].find(']').unwrap() + start;
            assert!(!line[start..end].contains('"'), "server view shows content: {line}");
        }
    }
    for part in ["1:1", "group", "channel", "attachment"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gochat-e2ee")).args(["demo", part]).output().unwrap();
        assert!(out.status.success(), "demo {part}");
    }
}

#[test]
fn the_attachment_demo_streams_seeks_and_refuses_a_tampered_blob() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_gochat-e2ee")).args(["demo", "attachment"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // Plaintext is released per segment, and the note is received only at finish.
    assert!(
        text.contains("(segment not complete yet)") && text.contains("(segment 0 authenticated: playback starts)"),
        "{text}"
    );
    assert!(text.contains("not received until finish") && text.contains("received (identical: true)"), "{text}");
    assert!(text.contains("Bob seeks to byte 100000: segment 1"), "{text}");
    // A hostile server is refused with the typed errors.
    assert!(text.contains("refused with Tampered"), "{text}");
    assert!(text.contains("finish refuses with Truncated"), "{text}");
    assert!(text.contains("refused at its header with WrongKey"), "{text}");
    // The server's view holds lengths only: no name, no type, no quoted content.
    let server: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("[server")).collect();
    assert_eq!(server.len(), 2, "{text}");
    for line in server {
        assert!(!line.contains('"') && !line.contains("voice-note") && !line.contains("audio/"), "{line}");
    }
}
