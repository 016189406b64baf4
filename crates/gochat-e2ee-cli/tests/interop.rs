//! Drives the built `gochat-e2ee interop` binary over its JSON-lines contract
//! (`docs/interop.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
}

impl Driver {
    fn spawn() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gochat-e2ee"))
            .arg("interop")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn driver");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Driver { child, stdin, stdout, next_id: 1 }
    }

    /// Sends a raw line and reads one response line.
    fn raw(&mut self, line: &str) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        assert!(out.ends_with('\n'), "response is one line: {out:?}");
        serde_json::from_str(&out).unwrap()
    }

    /// Sends raw bytes (which must end in a newline) and reads one response line.
    fn raw_bytes(&mut self, line: &[u8]) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line).unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        assert!(out.ends_with('\n'), "response is one line: {out:?}");
        serde_json::from_str(&out).unwrap()
    }

    /// Sends a request with a fresh id; checks the id is echoed.
    fn call(&mut self, op: &str, args: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = args;
        req["id"] = json!(id);
        req["op"] = json!(op);
        let resp = self.raw(&req.to_string());
        assert_eq!(resp["id"], json!(id), "{resp}");
        resp
    }

    fn ok(&mut self, op: &str, args: Value) -> Value {
        let resp = self.call(op, args);
        assert_eq!(resp["ok"], json!(true), "{op} failed: {resp}");
        resp
    }

    fn err(&mut self, op: &str, args: Value, error: &str) -> Value {
        let resp = self.call(op, args);
        assert_eq!(resp["ok"], json!(false), "{resp}");
        assert_eq!(resp["error"], json!(error), "{resp}");
        assert!(resp["detail"].is_string(), "{resp}");
        resp
    }

    fn encrypt(&mut self, device: &str, peer: &str, text: &str) -> String {
        let r = self.ok("encrypt", json!({"device": device, "peer": peer, "plaintext": B64.encode(text)}));
        r["message"].as_str().unwrap().to_owned()
    }

    fn decrypt(&mut self, device: &str, peer: &str, message: &str) -> String {
        let r = self.ok("decrypt", json!({"device": device, "peer": peer, "message": message}));
        String::from_utf8(B64.decode(r["plaintext"].as_str().unwrap()).unwrap()).unwrap()
    }

    /// Closes stdin and returns the exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_line(&mut rest).unwrap();
        assert!(rest.is_empty(), "no output after EOF");
        self.child.wait().unwrap()
    }
}

fn setup_pair(d: &mut Driver) {
    let a = d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    assert_eq!(B64.decode(a["identity_key"].as_str().unwrap()).unwrap().len(), 66);
    d.ok("new_device", json!({"device": "bob", "user": "bob"}));
    let bundle = d.ok("bundle", json!({"device": "bob"}))["bundle"].as_str().unwrap().to_owned();
    d.ok("init", json!({"device": "alice", "peer": "bob", "bundle": bundle}));
}

#[test]
fn full_conversation_with_out_of_order_delivery() {
    let mut d = Driver::spawn();
    let info = d.ok("info", json!({}));
    assert!(info["version"].is_string());
    assert_eq!(info["limits"]["max_forward_jump"], json!(gochat_e2ee::limits::MAX_FORWARD_JUMP));
    assert_eq!(info["limits"]["max_skipped_keys"], json!(gochat_e2ee::limits::MAX_SKIPPED_KEYS));
    assert_eq!(info["limits"]["max_message_bytes"], json!(gochat_e2ee::limits::MAX_MESSAGE_BYTES));

    setup_pair(&mut d);
    let m1 = d.encrypt("alice", "bob", "one");
    let m2 = d.encrypt("alice", "bob", "two");
    let m3 = d.encrypt("alice", "bob", "three");
    assert_eq!(B64.decode(&m1).unwrap()[0], 0x03, "prekey message first");
    assert_eq!(d.decrypt("bob", "alice", &m1), "one");
    assert_eq!(d.decrypt("bob", "alice", &m3), "three");
    let r1 = d.encrypt("bob", "alice", "reply");
    assert_eq!(B64.decode(&r1).unwrap()[0], 0x04);
    assert_eq!(d.decrypt("alice", "bob", &r1), "reply");
    assert_eq!(d.decrypt("bob", "alice", &m2), "two");
    d.err("decrypt", json!({"device": "bob", "peer": "alice", "message": m2}), "Duplicate");
    let m4 = d.encrypt("alice", "bob", "ratchet message");
    assert_eq!(B64.decode(&m4).unwrap()[0], 0x04);
    assert_eq!(d.decrypt("bob", "alice", &m4), "ratchet message");

    // Identity and the retry-request extension.
    let id = d.ok("identity", json!({"device": "bob"}));
    assert_eq!(id["fingerprint"].as_str().unwrap().len(), 64);
    let sent = d.encrypt("alice", "bob", "lost");
    let req = d.ok("retry_request", json!({"device": "bob", "peer": "alice", "message": sent}))["request"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = d.ok("handle_retry", json!({"device": "alice", "peer": "bob", "request": req}))["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(B64.decode(digest).unwrap().len(), 32);
    d.err("handle_retry", json!({"device": "alice", "peer": "bob", "request": req}), "UnknownMessage");
    d.err("retry_request", json!({"device": "bob", "peer": "nobody", "message": sent}), "NoSession");
    // After the retry, Alice re-sends on a new session.
    let again = d.encrypt("alice", "bob", "lost (re-sent)");
    assert_eq!(B64.decode(&again).unwrap()[0], 0x03);
    assert_eq!(d.decrypt("bob", "alice", &again), "lost (re-sent)");
    assert!(d.finish().success());
}

#[test]
fn export_and_import_across_processes() {
    let mut d1 = Driver::spawn();
    setup_pair(&mut d1);
    let m1 = d1.encrypt("alice", "bob", "before export");
    assert_eq!(d1.decrypt("bob", "alice", &m1), "before export");
    let alice = d1.ok("export", json!({"device": "alice"}))["state"].as_str().unwrap().to_owned();
    let bob = d1.ok("export", json!({"device": "bob"}))["state"].as_str().unwrap().to_owned();
    let bob_id = d1.ok("identity", json!({"device": "bob"}));
    assert!(d1.finish().success());

    let mut d2 = Driver::spawn();
    d2.ok("import", json!({"device": "alice", "state": alice}));
    d2.ok("import", json!({"device": "bob", "state": bob}));
    assert_eq!(d2.ok("identity", json!({"device": "bob"}))["fingerprint"], bob_id["fingerprint"]);
    let r = d2.encrypt("bob", "alice", "after import");
    assert_eq!(d2.decrypt("alice", "bob", &r), "after import");
    let m = d2.encrypt("alice", "bob", "still going");
    assert_eq!(d2.decrypt("bob", "alice", &m), "still going");
    // import replaces an existing device; a damaged snapshot is refused.
    d2.ok("import", json!({"device": "bob", "state": bob}));
    let mut bad = B64.decode(&bob).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    d2.err("import", json!({"device": "carol", "state": B64.encode(bad)}), "SnapshotUndecryptable");
    d2.err("bundle", json!({"device": "carol"}), "UnknownDevice");
    assert!(d2.finish().success());
}

#[test]
fn bad_requests_get_error_responses_and_the_process_continues() {
    let mut d = Driver::spawn();
    // Invalid JSON: id null.
    let r = d.raw("{not json");
    assert_eq!(
        (r["id"].clone(), r["ok"].clone(), r["error"].clone()),
        (Value::Null, json!(false), json!("BadRequest"))
    );
    // Not an object, and a missing id.
    assert_eq!(d.raw("[1,2]")["error"], json!("BadRequest"));
    let r = d.raw(r#"{"op":"info"}"#);
    assert_eq!((r["id"].clone(), r["error"].clone()), (Value::Null, json!("BadRequest")));
    // Unknown op, missing field, bad base64, unknown device, wrong type.
    d.err("frobnicate", json!({}), "UnknownOp");
    d.err("new_device", json!({"device": "alice"}), "BadRequest");
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    d.err("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": "%%%not base64"}), "BadRequest");
    d.err("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": 5}), "BadRequest");
    d.err("encrypt", json!({"device": "nobody", "peer": "bob", "plaintext": ""}), "UnknownDevice");
    // Library errors carry the library's code.
    d.err("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": ""}), "NoSession");
    d.err("init", json!({"device": "alice", "peer": "bob", "bundle": B64.encode([2u8, 1])}), "Malformed");
    d.err("decrypt", json!({"device": "alice", "peer": "bob", "message": B64.encode([9u8, 1])}), "WrongMessageType");
    // Still alive.
    assert!(d.ok("info", json!({}))["version"].is_string());
    assert!(d.finish().success());
}

#[test]
fn lines_that_are_not_utf8_get_bad_request_and_the_process_continues() {
    let mut d = Driver::spawn();
    // A BOM-like prefix before valid JSON, a lone UTF-8 lead byte, an invalid byte
    // inside a JSON string, and a non-UTF-8 line with a CRLF ending.
    let lines: [&[u8]; 4] =
        [b"\xff\xfe{\"id\":1,\"op\":\"info\"}\n", b"\xc3\n", b"{\"id\":2,\"op\":\"in\xc3fo\"}\n", b"\x80\r\n"];
    for line in lines {
        let r = d.raw_bytes(line);
        assert_eq!(
            (r["id"].clone(), r["ok"].clone(), r["error"].clone()),
            (Value::Null, json!(false), json!("BadRequest")),
            "{line:?}: {r}"
        );
        assert!(r["detail"].is_string(), "{r}");
    }
    // Still alive, and a valid request still works.
    assert!(d.ok("info", json!({}))["version"].is_string());
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    assert!(d.finish().success());
}

#[test]
fn eof_exits_zero_immediately() {
    let d = Driver::spawn();
    assert!(d.finish().success());
}

#[test]
fn identity_change_is_reported_blocks_sending_and_approval_unblocks() {
    let mut d = Driver::spawn();
    let alice_key = d.ok("new_device", json!({"device": "alice", "user": "alice"}))["identity_key"].clone();
    d.ok("new_device", json!({"device": "bob", "user": "bob"}));
    let bundle = d.ok("bundle", json!({"device": "alice"}))["bundle"].clone();
    let r = d.ok("init", json!({"device": "bob", "peer": "alice", "bundle": bundle}));
    assert_eq!(r["identity_event"], json!({"kind": "new"}));
    let m =
        d.ok("encrypt", json!({"device": "bob", "peer": "alice", "plaintext": B64.encode("hi")}))["message"].clone();
    let r = d.ok("decrypt", json!({"device": "alice", "peer": "bob", "message": m}));
    assert_eq!(r["identity_event"], json!({"kind": "new"}));
    let old_bob = r["sender_identity"].clone();
    // Bob reinstalls under the same device name: a new identity.
    let new_bob = d.ok("new_device", json!({"device": "bob", "user": "bob"}))["identity_key"].clone();
    let bundle = d.ok("bundle", json!({"device": "alice"}))["bundle"].clone();
    d.ok("init", json!({"device": "bob", "peer": "alice", "bundle": bundle}));
    let m = d.ok("encrypt", json!({"device": "bob", "peer": "alice", "plaintext": B64.encode("new phone")}))["message"]
        .clone();
    let r = d.ok("decrypt", json!({"device": "alice", "peer": "bob", "message": m}));
    assert_eq!(r["identity_event"], json!({"kind": "changed", "previous": old_bob, "approved": false}));
    assert_eq!(r["sender_identity"], new_bob);
    let p = d.ok("pinned_identity", json!({"device": "alice", "peer": "bob"}));
    assert_eq!((p["identity_key"].clone(), p["pending"].clone()), (old_bob.clone(), new_bob.clone()));
    let e = d.call("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode("x")}));
    assert_eq!(e["error"], json!("IdentityChanged"), "{e}");
    d.ok("approve_identity", json!({"device": "alice", "peer": "bob", "identity_key": new_bob}));
    let m = d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode("welcome")}))["message"]
        .clone();
    let r = d.ok("decrypt", json!({"device": "bob", "peer": "alice", "message": m}));
    assert_eq!(r["identity_event"], json!({"kind": "same"}));
    assert_eq!(r["sender_identity"], alice_key);
    let e = d.call("set_identity_policy", json!({"device": "alice", "policy": "trust_everyone"}));
    assert_eq!(e["error"], json!("BadRequest"), "{e}");
    d.ok("set_identity_policy", json!({"device": "alice", "policy": "notify"}));
}

#[test]
fn remove_sessions_forget_identity_and_state_len() {
    let mut d = Driver::spawn();
    setup_pair(&mut d);
    let len = d.ok("state_len", json!({"device": "alice"}))["state_len"].as_u64().unwrap();
    let state = d.ok("export", json!({"device": "alice"}))["state"].as_str().unwrap().to_owned();
    assert_eq!(B64.decode(state).unwrap().len() as u64, len + 51);
    assert_eq!(d.ok("remove_sessions", json!({"device": "alice", "peer": "bob"}))["removed"], json!(true));
    assert_eq!(d.ok("remove_sessions", json!({"device": "alice", "peer": "bob"}))["removed"], json!(false));
    assert!(d.ok("state_len", json!({"device": "alice"}))["state_len"].as_u64().unwrap() < len);
    d.err("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": "eA=="}), "NoSession");
    assert!(d.ok("pinned_identity", json!({"device": "alice", "peer": "bob"}))["identity_key"].is_string());
    assert_eq!(d.ok("forget_identity", json!({"device": "alice", "peer": "bob"}))["forgotten"], json!(true));
    assert!(d.ok("pinned_identity", json!({"device": "alice", "peer": "bob"}))["identity_key"].is_null());
    assert!(d.finish().success());
}
