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
    assert_eq!(
        r["identity_event"],
        json!({"kind": "changed", "previous": old_bob, "approved": false, "reason": "awaiting_approval"})
    );
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

/// Devices `names` (each user named like its device), with a pairwise session between
/// every two that both sides have used.
fn setup_mesh(d: &mut Driver, names: &[&str]) {
    for n in names {
        d.ok("new_device", json!({"device": n, "user": n, "now": NOW}));
    }
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let bundle = d.ok("bundle", json!({"device": b}))["bundle"].as_str().unwrap().to_owned();
            d.ok("init", json!({"device": a, "peer": b, "bundle": bundle}));
            let m = d.encrypt(a, b, "hi");
            d.decrypt(b, a, &m);
            let r = d.encrypt(b, a, "hi");
            d.decrypt(a, b, &r);
        }
    }
}

const NOW: u64 = 1_700_000_000;

/// Delivers every `outgoing` item from `from` with `receive_control`; returns the results.
fn deliver_control(d: &mut Driver, from: &str, outgoing: &Value) -> Vec<Value> {
    outgoing
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let to = o["peer"].as_str().unwrap();
            d.ok("receive_control", json!({"device": to, "peer": from, "message": o["message"]}))
        })
        .collect()
}

fn member(d: &mut Driver, name: &str, admin: bool) -> Value {
    let key = d.ok("identity", json!({"device": name}))["identity_key"].clone();
    json!({"name": name, "identity_key": key, "admin": admin})
}

#[test]
fn a_group_conversation_with_a_removal() {
    let mut d = Driver::spawn();
    setup_mesh(&mut d, &["ana", "ben", "cai"]);
    let members = json!([member(&mut d, "ben", false), member(&mut d, "cai", false)]);
    let created = d.ok("group_create", json!({"device": "ana", "members": members, "now": NOW}));
    let gid = created["group_id"].clone();
    assert_eq!(created["epoch"], json!(0));
    assert_eq!(created["withheld"], json!([]));
    let joined: Vec<Value> = ["ben", "cai"]
        .iter()
        .map(|who| d.ok("group_join", json!({"device": who, "welcome": created["welcome"], "now": NOW})))
        .collect();
    for (who, j) in ["ben", "cai"].iter().zip(&joined) {
        assert_eq!(j["group_id"], gid);
        deliver_control(&mut d, who, &j["outgoing"]);
    }
    for got in deliver_control(&mut d, "ana", &created["outgoing"]) {
        assert_eq!(got["kind"], json!("sender_key"));
        assert_eq!(got["identity_event"], json!({"kind": "same"}));
    }
    let sent =
        d.ok("group_encrypt", json!({"device": "ana", "group_id": gid, "plaintext": B64.encode("hello"), "now": NOW}));
    for who in ["ben", "cai"] {
        let p = d.ok("group_decrypt", json!({"device": who, "peer": "ana", "message": sent["message"]}));
        assert_eq!(p["plaintext"], json!(B64.encode("hello")));
        assert_eq!(p["sender"], json!("ana"));
    }
    d.err("group_decrypt", json!({"device": "ben", "peer": "ana", "message": sent["message"]}), "Duplicate");
    // Ana removes Cai: Ben applies the commit; Cai reads nothing sent afterwards.
    let removed = d.ok("group_remove", json!({"device": "ana", "group_id": gid, "names": ["cai"], "now": NOW}));
    assert_eq!(removed["removed"], json!(["cai"]));
    let processed = d.ok("group_process_commit", json!({"device": "ben", "commit": removed["commit"], "now": NOW}));
    assert_eq!(processed["epoch"], json!(1));
    deliver_control(&mut d, "ana", &removed["outgoing"]);
    deliver_control(&mut d, "ben", &processed["outgoing"]);
    let sent =
        d.ok("group_encrypt", json!({"device": "ben", "group_id": gid, "plaintext": B64.encode("secret"), "now": NOW}));
    deliver_control(&mut d, "ben", &sent["outgoing"]);
    let p = d.ok("group_decrypt", json!({"device": "ana", "peer": "ben", "message": sent["message"]}));
    assert_eq!(p["plaintext"], json!(B64.encode("secret")));
    let refused = d.call("group_decrypt", json!({"device": "cai", "peer": "ben", "message": sent["message"]}));
    assert_eq!(refused["ok"], json!(false), "{refused}");
    let info = d.ok("group_info", json!({"device": "ben", "group_id": gid}));
    assert_eq!(info["epoch"], json!(1));
    assert_eq!(info["members"].as_array().unwrap().len(), 2);
    d.ok(
        "group_set_rotation_policy",
        json!({"device": "ben", "group_id": gid, "max_messages": 10, "max_age_secs": 60}),
    );
    assert_eq!(d.ok("group_forget", json!({"device": "cai", "group_id": gid}))["forgotten"], json!(true));
    d.err("group_info", json!({"device": "cai", "group_id": gid}), "UnknownGroup");
    d.err("group_encrypt", json!({"device": "ana", "group_id": B64.encode([0u8; 31]), "plaintext": ""}), "BadRequest");
    d.err("group_create", json!({"device": "ana", "members": "ben"}), "BadRequest");
}

#[test]
fn public_and_restricted_channels() {
    let mut d = Driver::spawn();
    setup_mesh(&mut d, &["agency", "ana", "ben"]);
    // Public: anyone with the directory key verifies, statelessly or as a subscriber.
    let public = d.ok("channel_create", json!({"device": "agency", "kind": "public"}));
    let (pid, pkey) = (public["channel_id"].clone(), public["channel_key"].clone());
    assert_eq!(d.ok("channel_public_key", json!({"device": "agency", "channel_id": pid}))["channel_key"], pkey);
    d.ok("channel_subscribe", json!({"device": "ana", "channel_id": pid, "channel_key": pkey, "kind": "public"}));
    let body = B64.encode("{\"notice\":1}");
    let post = d.ok(
        "channel_announce",
        json!({"device": "agency", "channel_id": pid, "content_type": "json", "body": body, "now": NOW}),
    )["post"]
        .clone();
    let v = d.ok("verify_announcement", json!({"post": post, "channel_key": pkey}));
    assert_eq!(
        (v["seq"].clone(), v["content_type"].clone(), v["body"].clone()),
        (json!(1), json!("json"), json!(body))
    );
    let got = d.ok("channel_receive", json!({"device": "ana", "post": post, "now": NOW}));
    assert_eq!((got["kind"].clone(), got["channel_id"].clone()), (json!("announcement"), pid.clone()));
    d.err("channel_receive", json!({"device": "ana", "post": post, "now": NOW}), "StaleSequence");
    d.err("channel_receive", json!({"device": "ben", "post": post, "now": NOW}), "UnknownGroup");
    d.err("verify_announcement", json!({"post": post, "channel_key": B64.encode([9u8; 32])}), "WrongSigner");
    // Restricted: the content key travels pairwise; a removed subscriber is cut off.
    let restricted = d.ok("channel_create", json!({"device": "agency", "kind": "restricted"}));
    let (rid, rkey) = (restricted["channel_id"].clone(), restricted["channel_key"].clone());
    for who in ["ana", "ben"] {
        d.ok("channel_subscribe", json!({"device": who, "channel_id": rid, "channel_key": rkey, "kind": "restricted"}));
    }
    let sent =
        d.ok("channel_send_key", json!({"device": "agency", "channel_id": rid, "subscribers": ["ana", "ben", "zed"]}));
    assert_eq!(sent["withheld"], json!([{"peer": "zed", "reason": "no_session"}]));
    for got in deliver_control(&mut d, "agency", &sent["outgoing"]) {
        assert_eq!((got["kind"].clone(), got["channel_id"].clone()), (json!("channel_key"), rid.clone()));
    }
    let post = d.ok(
        "channel_announce",
        json!({"device": "agency", "channel_id": rid, "content_type": "text", "body": B64.encode("one"), "now": NOW}),
    )["post"]
        .clone();
    for who in ["ana", "ben"] {
        let got = d.ok("channel_receive", json!({"device": who, "post": post, "now": NOW}));
        assert_eq!(got["body"], json!(B64.encode("one")));
    }
    let rekey =
        d.ok("channel_rotate_content_key", json!({"device": "agency", "channel_id": rid, "subscribers": ["ana"]}));
    assert!(rekey["key_id"].is_u64());
    deliver_control(&mut d, "agency", &rekey["outgoing"]);
    let post = d.ok(
        "channel_announce",
        json!({"device": "agency", "channel_id": rid, "content_type": "text", "body": B64.encode("two"), "now": NOW}),
    )["post"]
        .clone();
    assert_eq!(
        d.ok("channel_receive", json!({"device": "ana", "post": post, "now": NOW}))["body"],
        json!(B64.encode("two"))
    );
    d.err("channel_receive", json!({"device": "ben", "post": post, "now": NOW}), "MissingSenderKey");
    // A signing-key rotation.
    let rot = d.ok("channel_rotate_signing_key", json!({"device": "agency", "channel_id": rid, "now": NOW}));
    let got = d.ok("channel_receive", json!({"device": "ana", "post": rot["post"], "now": NOW}));
    assert_eq!(
        (got["kind"].clone(), got["new_key"].clone(), got["old_key"].clone()),
        (json!("key_rotated"), rot["channel_key"].clone(), rkey)
    );
    d.err("channel_create", json!({"device": "agency", "kind": "secret"}), "BadRequest");
    d.err(
        "channel_announce",
        json!({"device": "agency", "channel_id": rid, "content_type": "video", "body": ""}),
        "BadRequest",
    );
    assert_eq!(d.ok("channel_forget", json!({"device": "ben", "channel_id": rid}))["forgotten"], json!(true));
    assert_eq!(d.finish().code(), Some(0));
}

// ---------------------------------------------------------------- attachments

const KEY: [u8; 32] = [7u8; 32];
const PREFIX: [u8; 7] = [1, 2, 3, 4, 5, 6, 7];

fn bytes_of(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

fn plaintext_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 1) as u8).collect()
}

/// `attachment_encrypt` with the fixed test key and nonce prefix.
fn encrypt_fixed(d: &mut Driver, plaintext: &[u8], segment_size: u32) -> Value {
    d.ok(
        "attachment_encrypt",
        json!({"plaintext": B64.encode(plaintext), "content_type": "application/pdf", "file_name": "report.pdf",
               "segment_size": segment_size, "key": B64.encode(KEY), "nonce_prefix": B64.encode(PREFIX)}),
    )
}

fn with_blob(pointer: &Value, blob: &[u8]) -> Value {
    json!({"pointer": pointer, "blob": B64.encode(blob)})
}

#[test]
fn attachments_round_trip_in_any_chunking() {
    use sha2::Digest;
    let mut d = Driver::spawn();
    for (len, segment_size) in [(0usize, 65_536u32), (1, 1024), (1024, 1024), (2500, 1024), (70_000, 65_536)] {
        let plaintext = plaintext_of(len);
        for enc_chunk in [None, Some(1usize), Some(1000), Some(4096)] {
            let mut args = json!({"plaintext": B64.encode(&plaintext), "content_type": "audio/ogg",
                                  "segment_size": segment_size});
            if let Some(c) = enc_chunk {
                args["chunk"] = json!(c);
            }
            let e = d.ok("attachment_encrypt", args);
            let blob = bytes_of(&e["blob"]);
            let padded = e["padded_len"].as_u64().unwrap();
            let count = e["segment_count"].as_u64().unwrap();
            assert_eq!(padded, gochat_e2ee::attachment::padded_len(len as u64), "{e}");
            assert_eq!(count, padded.div_ceil(u64::from(segment_size)));
            assert_eq!(e["segment_size"], json!(segment_size));
            assert_eq!(blob.len() as u64, 53 + padded + 16 * count);
            assert_eq!(bytes_of(&e["header"]), blob[..53]);
            assert_eq!(bytes_of(&e["digest"]), sha2::Sha256::digest(&blob).to_vec());
            let info = d.ok("attachment_pointer_info", json!({"pointer": e["pointer"]}));
            assert_eq!(
                (
                    info["size"].clone(),
                    info["padded_len"].clone(),
                    info["content_type"].clone(),
                    info["digest"].clone()
                ),
                (json!(len), json!(padded), json!("audio/ogg"), e["digest"].clone())
            );
            assert_eq!(info["file_name"], Value::Null);
            assert!(info.get("key").is_none(), "the key is never shown: {info}");
            for dec_chunk in [None, Some(1usize), Some(53), Some(1040), Some(100_000)] {
                let mut args = with_blob(&e["pointer"], &blob);
                if let Some(c) = dec_chunk {
                    args["chunk"] = json!(c);
                }
                if dec_chunk == Some(1) && len > 2500 {
                    continue; // one byte per update on a 70 KB blob proves nothing more
                }
                let got = d.ok("attachment_decrypt", args);
                assert_eq!(bytes_of(&got["plaintext"]), plaintext, "len {len} chunks {enc_chunk:?}/{dec_chunk:?}");
            }
        }
    }
    assert_eq!(d.finish().code(), Some(0));
}

#[test]
fn attachment_encrypt_is_deterministic_with_a_given_key_and_nonce_prefix() {
    use gochat_e2ee::attachment::{AttachmentKey, Encryptor};
    let mut d = Driver::spawn();
    let plaintext = plaintext_of(5000);
    let first = encrypt_fixed(&mut d, &plaintext, 2048);
    for chunk in [1usize, 777, 2048, 5000] {
        let args = json!({"plaintext": B64.encode(&plaintext), "content_type": "application/pdf",
                          "file_name": "report.pdf", "segment_size": 2048, "chunk": chunk,
                          "key": B64.encode(KEY), "nonce_prefix": B64.encode(PREFIX)});
        let again = d.ok("attachment_encrypt", args);
        for field in ["blob", "pointer", "header", "digest", "padded_len", "segment_count"] {
            assert_eq!(again[field], first[field], "{field} with chunk {chunk}");
        }
    }
    // The same bytes as the library itself produces from these parts.
    let mut e = Encryptor::from_parts(
        AttachmentKey::from_bytes(KEY),
        PREFIX,
        5000,
        2048,
        "application/pdf",
        Some("report.pdf"),
    )
    .unwrap();
    let mut blob = e.update(&plaintext).unwrap();
    let (tail, pointer) = e.finish().unwrap();
    blob.extend_from_slice(&tail);
    assert_eq!(bytes_of(&first["blob"]), blob);
    assert_eq!(bytes_of(&first["pointer"]), *pointer.encode());
    // Without a key, every attachment gets a fresh key and nonce prefix.
    let args = json!({"plaintext": B64.encode(&plaintext), "content_type": "application/pdf"});
    let (a, b) = (d.ok("attachment_encrypt", args.clone()), d.ok("attachment_encrypt", args));
    assert_ne!(a["blob"], b["blob"]);
    assert_ne!(a["header"], b["header"]);
    assert_eq!(d.finish().code(), Some(0));
}

#[test]
fn attachment_decrypt_reports_every_error_code() {
    let mut d = Driver::spawn();
    let plaintext = plaintext_of(3000);
    let e = encrypt_fixed(&mut d, &plaintext, 1024);
    let (pointer, blob) = (e["pointer"].clone(), bytes_of(&e["blob"]));
    /// Refused both in one update and in 100-byte pieces.
    fn check(d: &mut Driver, pointer: &Value, blob: &[u8], error: &str) {
        for chunk in [blob.len().max(1), 100] {
            let mut args = with_blob(pointer, blob);
            args["chunk"] = json!(chunk);
            d.err("attachment_decrypt", args, error);
        }
    }
    // Another key (a fresh random attachment of the same size).
    let other = d.ok(
        "attachment_encrypt",
        json!({"plaintext": B64.encode(&plaintext), "content_type": "x/y",
                                                  "segment_size": 1024}),
    );
    check(&mut d, &other["pointer"], &blob, "WrongKey");
    // A flipped bit in a segment, and in the header's nonce prefix.
    for at in [53 + 1500, 14] {
        let mut bad = blob.clone();
        bad[at] ^= 1;
        check(&mut d, &pointer, &bad, "Tampered");
    }
    // Cut short (at a segment boundary too, and inside the header), extended.
    for len in [blob.len() - 1, 53 + 2 * (1024 + 16), 20, 0] {
        check(&mut d, &pointer, &blob[..len], "Truncated");
    }
    let mut long = blob.clone();
    long.push(0);
    check(&mut d, &pointer, &long, "TrailingData");
    // Two segments swapped.
    let mut swapped = blob.clone();
    let (s0, s1) = (53..53 + 1040, 53 + 1040..53 + 2080);
    let seg0 = blob[s0.clone()].to_vec();
    swapped[s0].copy_from_slice(&blob[s1.clone()]);
    swapped[s1].copy_from_slice(&seg0);
    check(&mut d, &pointer, &swapped, "Tampered");
    // The sender's second blob under the same key (same size class): only the digest tells.
    let mut changed = plaintext.clone();
    changed[0] ^= 0xff;
    let second = encrypt_fixed(&mut d, &changed, 1024);
    check(&mut d, &pointer, &bytes_of(&second["blob"]), "DigestMismatch");
    // A pointer whose size is of another size class than the blob's.
    let mut ptr = bytes_of(&pointer);
    let size_at = 2 + 32 + 32;
    ptr[size_at..size_at + 8].copy_from_slice(&5000u64.to_be_bytes());
    check(&mut d, &json!(B64.encode(&ptr)), &blob, "SizeMismatch");
    // Another size in the same class: the size is in every segment's AAD.
    for size in [2999u64, 3001] {
        ptr[size_at..size_at + 8].copy_from_slice(&size.to_be_bytes());
        check(&mut d, &json!(B64.encode(&ptr)), &blob, "Tampered");
    }
    // Malformed pointers: cut short, trailing bytes, a bad file name, another type.
    let good = bytes_of(&pointer);
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_name = good.clone();
    let n = bad_name.len();
    bad_name[n - 1] = b'/';
    for bad in [good[..40].to_vec(), trailing, bad_name] {
        d.err("attachment_decrypt", with_blob(&json!(B64.encode(&bad)), &blob), "Malformed");
        d.err("attachment_pointer_info", json!({"pointer": B64.encode(&bad)}), "Malformed");
    }
    d.err("attachment_decrypt", with_blob(&e["header"], &blob), "WrongMessageType");
    // A refused request changes nothing: the right pair still decrypts.
    assert_eq!(bytes_of(&d.ok("attachment_decrypt", with_blob(&pointer, &blob))["plaintext"]), plaintext);
    assert_eq!(d.finish().code(), Some(0));
}

#[test]
fn attachment_decrypt_segment_gives_random_access_to_authentic_segments() {
    let mut d = Driver::spawn();
    let plaintext = plaintext_of(2500); // padded to 2560: segments of 1024, 1024, 512
    let e = encrypt_fixed(&mut d, &plaintext, 1024);
    assert_eq!(e["segment_count"], json!(3));
    let (pointer, header, blob) = (e["pointer"].clone(), e["header"].clone(), bytes_of(&e["blob"]));
    let range = |i: usize| 53 + i * 1040..(53 + i * 1040 + 1040).min(blob.len());
    let seg = |i: usize| B64.encode(&blob[range(i)]);
    for (i, want) in [(0usize, &plaintext[..1024]), (1, &plaintext[1024..2048]), (2, &plaintext[2048..])] {
        let got = d.ok(
            "attachment_decrypt_segment",
            json!({"pointer": pointer, "header": header, "index": i, "segment": seg(i)}),
        );
        assert_eq!(bytes_of(&got["plaintext"]), want, "segment {i}");
    }
    let call = |d: &mut Driver, index: u64, segment: String, error: &str| {
        d.err(
            "attachment_decrypt_segment",
            json!({"pointer": pointer, "header": header, "index": index, "segment": segment}),
            error,
        );
    };
    call(&mut d, 0, seg(1), "Tampered"); // a segment at another position
    call(&mut d, 2, seg(1), "TrailingData"); // the last one is shorter
    call(&mut d, 1, B64.encode(&blob[range(1)][..1000]), "Truncated");
    call(&mut d, 3, seg(2), "Malformed"); // out of range
    let mut bad = blob[range(1)].to_vec();
    bad[0] ^= 1;
    call(&mut d, 1, B64.encode(&bad), "Tampered");
    let other = d.ok(
        "attachment_encrypt",
        json!({"plaintext": B64.encode(&plaintext), "content_type": "x/y",
                                                  "segment_size": 1024}),
    );
    d.err(
        "attachment_decrypt_segment",
        json!({"pointer": other["pointer"], "header": header, "index": 0, "segment": seg(0)}),
        "WrongKey",
    );
    d.err(
        "attachment_decrypt_segment",
        json!({"pointer": pointer, "header": header, "index": -1, "segment": seg(0)}),
        "BadRequest",
    );
    assert_eq!(d.finish().code(), Some(0));
}

#[test]
fn attachment_bad_arguments_are_refused() {
    let mut d = Driver::spawn();
    let pt = B64.encode(b"hello");
    let enc = |extra: Value| {
        let mut args = json!({"plaintext": pt, "content_type": "text/plain"});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        args
    };
    for (extra, error) in [
        (json!({"key": B64.encode(KEY)}), "BadRequest"), // without a nonce prefix
        (json!({"nonce_prefix": B64.encode(PREFIX)}), "BadRequest"),
        (json!({"key": B64.encode([1u8; 31]), "nonce_prefix": B64.encode(PREFIX)}), "BadRequest"),
        (json!({"key": B64.encode(KEY), "nonce_prefix": B64.encode([1u8; 8])}), "BadRequest"),
        (json!({"chunk": 0}), "BadRequest"),
        (json!({"segment_size": "big"}), "BadRequest"),
        (json!({"segment_size": 1u64 << 32}), "BadRequest"),
        (json!({"file_name": 5}), "BadRequest"),
        (json!({"segment_size": 1023}), "Malformed"),
        (json!({"segment_size": 1_048_577}), "Malformed"),
        (json!({"file_name": "../etc/passwd"}), "Malformed"),
        (json!({"file_name": ".."}), "Malformed"),
        (json!({"content_type": ""}), "Malformed"),
        (json!({"content_type": "text/\u{7f}"}), "Malformed"),
    ] {
        d.err("attachment_encrypt", enc(extra), error);
    }
    d.err("attachment_encrypt", json!({"content_type": "text/plain"}), "BadRequest");
    d.err("attachment_encrypt", json!({"plaintext": "***", "content_type": "text/plain"}), "BadRequest");
    d.err("attachment_decrypt", json!({"pointer": pt}), "BadRequest");
    d.err("attachment_pointer_info", json!({}), "BadRequest");
    // A file name is optional and may be null.
    let e = d.ok("attachment_encrypt", enc(json!({"file_name": null})));
    assert_eq!(d.ok("attachment_pointer_info", json!({"pointer": e["pointer"]}))["file_name"], Value::Null);
    let e = d.ok("attachment_encrypt", enc(json!({"file_name": "notes.txt"})));
    assert_eq!(d.ok("attachment_pointer_info", json!({"pointer": e["pointer"]}))["file_name"], json!("notes.txt"));
    assert_eq!(d.finish().code(), Some(0));
}

#[test]
fn safety_number_is_the_same_on_both_sides_and_a_scan_matches_only_the_real_identities() {
    let mut d = Driver::spawn();
    let ka = B64.encode([1u8; 66]);
    let kb = B64.encode([2u8; 66]);
    let km = B64.encode([3u8; 66]);
    let args = |li: &str, lk: &str, ri: &str, rk: &str| json!({"local_id": li, "local_identity": lk, "remote_id": ri, "remote_identity": rk});
    let a = d.ok("safety_number", args("alice@agency.gov.my", &ka, "bob@agency.gov.my", &kb));
    let b = d.ok("safety_number", args("bob@agency.gov.my", &kb, "alice@agency.gov.my", &ka));
    assert_eq!(a["digits"], b["digits"]);
    assert_eq!(a["digits"].as_str().unwrap().len(), 60);
    assert_eq!(a["grouped"].as_str().unwrap().replace(' ', ""), a["digits"].as_str().unwrap());
    assert!(a.get("scan").is_none());
    let mut scan = args("alice@agency.gov.my", &ka, "bob@agency.gov.my", &kb);
    scan["scanned"] = b["scannable"].clone();
    assert_eq!(d.ok("safety_number", scan.clone())["scan"], json!("Match"));
    scan["scanned"] = a["scannable"].clone();
    assert_eq!(d.ok("safety_number", scan.clone())["scan"], json!("Mismatch"));
    let mut v2 = B64.decode(b["scannable"].as_str().unwrap()).unwrap();
    v2[1] = 2;
    scan["scanned"] = json!(B64.encode(&v2));
    let r = d.ok("safety_number", scan.clone());
    assert_eq!((r["scan"].clone(), r["theirs"].clone()), (json!("VersionMismatch"), json!(2)));
    let genuine = B64.decode(b["scannable"].as_str().unwrap()).unwrap();
    scan["scanned"] = json!(B64.encode(&genuine[..65]));
    d.err("safety_number", scan.clone(), "Malformed");
    scan["scanned"] = json!(B64.encode([0x51u8; 66]));
    d.err("safety_number", scan, "WrongMessageType");
    let m = d.ok("safety_number", args("alice@agency.gov.my", &ka, "bob@agency.gov.my", &km));
    assert_ne!(m["digits"], a["digits"]);
    d.err("safety_number", args("", &ka, "bob", &kb), "Malformed");
    d.err("safety_number", args("a", &ka, "a", &ka), "Malformed");
    assert!(d.finish().success());
}

#[test]
fn a_device_links_once_through_the_provisioning_ops() {
    let mut d = Driver::spawn();
    let now = 1_700_000_000u64;
    let web = d.ok("new_device", json!({"device": "web", "user": "aminah@mof.gov.my", "now": now}));
    d.err("provisioning_offer", json!({"device": "nobody", "device_id": "web-1", "now": now}), "UnknownDevice");
    d.err("provisioning_offer", json!({"device": "web", "device_id": "a/b", "now": now}), "Malformed");
    let offer = d.ok("provisioning_offer", json!({"device": "web", "device_id": "web-1", "now": now}))["offer"].clone();
    let identity = B64.decode(web["identity_key"].as_str().unwrap()).unwrap();
    let seal = |offer: &Value, now: u64| {
        json!({
            "offer": offer, "user": "aminah@mof.gov.my", "master_public": B64.encode(&identity[2..34]),
            "endorsement": B64.encode([0x56u8; 40]), "device_list": B64.encode([0x55u8; 80]), "now": now,
        })
    };
    d.err("provisioning_seal", seal(&offer, now + 601), "ProvisioningExpired");
    let message = d.ok("provisioning_seal", seal(&offer, now + 5))["message"].clone();
    let mut tampered = B64.decode(message.as_str().unwrap()).unwrap();
    *tampered.last_mut().unwrap() ^= 1;
    d.err("provisioning_open", json!({"device": "web", "message": B64.encode(&tampered)}), "AuthenticationFailed");
    d.err("provisioning_open", json!({"device": "other", "message": message}), "UnknownDevice");
    let got = d.ok("provisioning_open", json!({"device": "web", "message": message}));
    assert_eq!(got["user"], json!("aminah@mof.gov.my"));
    assert_eq!(got["master_public"], json!(B64.encode(&identity[2..34])));
    assert_eq!(got["device_list"], json!(B64.encode([0x55u8; 80])));
    d.err("provisioning_open", json!({"device": "web", "message": message}), "ProvisioningUsed");
    assert!(d.finish().success());
}

#[test]
fn certificate_ops_issue_verify_and_gate_session_starts() {
    let mut d = Driver::spawn();
    let now = 1_800_000_000u64;
    let (root_seed, agency_seed) = (B64.encode([1u8; 32]), B64.encode([2u8; 32]));
    let root = d.ok("cert_public_key", json!({"seed": root_seed}))["public_key"].clone();
    let agency = d.ok("cert_public_key", json!({"seed": agency_seed}))["public_key"].clone();
    let agency_cert = d.ok(
        "cert_issue_agency",
        json!({"root_seed": root_seed, "agency_key": agency, "serial": 7, "name": "Ministry of Finance",
               "domains": ["mof.gov.my"], "not_before": now - 1000, "not_after": now + 1000}),
    )["certificate"]
        .clone();
    let bob_key =
        d.ok("new_device", json!({"device": "bob", "user": "bob@mof.gov.my", "now": now}))["identity_key"].clone();
    d.ok("new_device", json!({"device": "alice", "user": "alice@mof.gov.my", "now": now}));
    let device_cert = d.ok(
        "cert_issue_device",
        json!({"agency_seed": agency_seed, "serial": 42, "address": "bob@mof.gov.my/laptop", "identity_key": bob_key,
               "not_before": now - 100, "not_after": now + 100}),
    )["certificate"]
        .clone();
    let chain = d.ok("cert_chain", json!({"device_certificate": device_cert, "agency_certificate": agency_cert}))
        ["chain"]
        .clone();
    let v = d.ok("cert_verify", json!({"chain": chain, "roots": [root], "now": now}));
    assert_eq!(v["peer"], "bob@mof.gov.my/laptop");
    assert_eq!(v["identity_key"], bob_key);
    assert_eq!(v["serial"], 42);
    d.err("cert_verify", json!({"chain": chain, "roots": [root], "now": now + 100}), "CertificateExpired");
    d.err("cert_verify", json!({"chain": chain, "roots": [agency], "now": now}), "UnknownRoot");
    let list = d.ok("revocation_issue", json!({"seed": agency_seed, "seq": 1, "issued_at": now, "serials": [42]}))
        ["list"]
        .clone();
    d.err(
        "cert_verify",
        json!({"chain": chain, "roots": [root], "now": now,
               "revocation_lists": [{"list": list, "agency_certificate": agency_cert}]}),
        "CertificateRevoked",
    );
    // Device ops: a required certificate gates the session start.
    d.ok("set_trust_roots", json!({"device": "alice", "roots": [root]}));
    d.ok("set_require_certificate", json!({"device": "alice", "require": true}));
    d.ok("set_identity_policy", json!({"device": "alice", "policy": "certified"}));
    let bundle = d.ok("bundle", json!({"device": "bob"}))["bundle"].clone();
    d.err("init", json!({"device": "alice", "peer": "bob@mof.gov.my/laptop", "bundle": bundle}), "CertificateRequired");
    d.err(
        "initiate_certified",
        json!({"device": "alice", "peer": "bob@mof.gov.my/phone", "bundle": bundle, "chain": chain, "now": now}),
        "CertificateMismatch",
    );
    let r = d.ok(
        "initiate_certified",
        json!({"device": "alice", "peer": "bob@mof.gov.my/laptop", "bundle": bundle, "chain": chain, "now": now}),
    );
    assert_eq!(r["identity_event"], json!({"kind": "new"}));
    let v = d.ok("verify_device", json!({"device": "alice", "chain": chain, "now": now}));
    assert_eq!(v["agency_name"], "Ministry of Finance");
    let u = d.ok(
        "apply_revocation_list",
        json!({"device": "alice", "list": list, "agency_certificate": agency_cert, "now": now}),
    );
    assert_eq!(u["update"], "applied");
    d.err("verify_device", json!({"device": "alice", "chain": chain, "now": now}), "CertificateRevoked");
    assert!(d.finish().success());
}

/// `decrypt_batch`: one outcome per message, in order; a refused message is reported and
/// does not stop the others.
#[test]
fn decrypt_batch_reports_each_message() {
    let mut d = Driver::spawn();
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    d.ok("new_device", json!({"device": "bob", "user": "bob"}));
    let bundle = d.ok("bundle", json!({"device": "bob"}))["bundle"].clone();
    d.ok("init", json!({"device": "alice", "peer": "bob", "bundle": bundle}));
    let sent: Vec<Value> = (0..3)
        .map(|i| {
            d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(format!("m{i}"))}))
                ["message"]
                .clone()
        })
        .collect();
    let mut messages: Vec<Value> = sent.iter().map(|m| json!({"peer": "alice", "message": m})).collect();
    messages.insert(1, json!({"peer": "alice", "message": ""}));
    let out = d.ok("decrypt_batch", json!({"device": "bob", "messages": messages}));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["plaintext"], json!(B64.encode("m0")));
    assert_eq!(results[1]["ok"], json!(false));
    assert_eq!(results[1]["error"], json!("Malformed"));
    assert_eq!(results[3]["plaintext"], json!(B64.encode("m2")));
    let again = d.ok("decrypt_batch", json!({"device": "bob", "messages": [{"peer": "alice", "message": sent[0]}]}));
    assert_eq!(again["results"][0]["error"], json!("Duplicate"));
    d.err("decrypt_batch", json!({"device": "bob", "messages": "x"}), "BadRequest");
    assert!(d.finish().success());
}

/// `ack` with `digests`: many kept results acknowledged in one store transaction.
#[test]
fn ack_with_digests_acknowledges_many_at_once() {
    let dir = std::env::temp_dir().join(format!("gochat-interop-ackmany-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("bob.sqlite").to_string_lossy().into_owned();
    let mut d = Driver::spawn();
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    d.ok("new_device", json!({"device": "bob", "user": "bob", "store": store}));
    let bundle = d.ok("bundle", json!({"device": "bob"}))["bundle"].clone();
    d.ok("init", json!({"device": "alice", "peer": "bob", "bundle": bundle}));
    let mut digests = Vec::new();
    for i in 0..3 {
        let m = d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(format!("m{i}"))}))
            ["message"]
            .clone();
        let got = d.ok("decrypt", json!({"device": "bob", "peer": "alice", "message": m, "ack": false}));
        digests.push(got["digest"].clone());
    }
    let before = d.ok("store_generation", json!({"device": "bob"}))["generation"].as_u64().unwrap();
    let acked = d.ok("ack", json!({"device": "bob", "digests": digests}));
    assert_eq!(acked["acknowledged_count"], json!(3));
    assert_eq!(d.ok("store_generation", json!({"device": "bob"}))["generation"].as_u64().unwrap(), before + 1);
    assert_eq!(d.ok("ack", json!({"device": "bob", "digests": digests}))["acknowledged_count"], json!(0));
    assert_eq!(d.ok("ack", json!({"device": "alice", "digests": []}))["acknowledged_count"], json!(0));
    d.err("ack", json!({"device": "bob", "digests": ["AAAA"]}), "BadRequest");
    assert!(d.finish().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rollback anchor: `open_device` with `min_generation` refuses an older copy of the
/// store file (`StoreRolledBack`); `store_generation` reports the generation to record.
#[test]
fn open_device_refuses_a_store_older_than_min_generation() {
    let dir = std::env::temp_dir().join(format!("gochat-interop-rollback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("alice.sqlite");
    let backup = dir.join("backup.sqlite");
    let path = store.to_string_lossy().into_owned();
    let mut d = Driver::spawn();
    d.ok("new_device", json!({"device": "bob", "user": "bob"}));
    let bundle = d.ok("bundle", json!({"device": "bob"}))["bundle"].clone();
    d.ok("new_device", json!({"device": "alice", "user": "alice", "store": path}));
    d.ok("init", json!({"device": "alice", "peer": "bob", "bundle": bundle}));
    let old = d.ok("store_generation", json!({"device": "alice"}))["generation"].as_u64().unwrap();
    d.err("store_generation", json!({"device": "bob"}), "NotSupported");
    // Drop the handle (open it under another name) so the file can be copied whole.
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    std::fs::copy(&store, &backup).unwrap();
    let opened = d.ok("open_device", json!({"device": "alice", "store": path, "min_generation": old}));
    assert_eq!(opened["generation"], json!(old));
    d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(b"one")}));
    let anchor = d.ok("store_generation", json!({"device": "alice"}))["generation"].as_u64().unwrap();
    assert_eq!(anchor, old + 1);
    d.ok("new_device", json!({"device": "alice", "user": "alice"}));
    std::fs::copy(&backup, &store).unwrap();
    d.err("open_device", json!({"device": "alice", "store": path, "min_generation": anchor}), "StoreRolledBack");
    d.err("open_device", json!({"device": "alice", "store": path, "min_generation": "1"}), "BadRequest");
    let reopened = d.ok("open_device", json!({"device": "alice", "store": path}));
    assert_eq!(reopened["generation"], json!(old));
    assert!(d.finish().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store-backed device (`new_device` with `store`, `open_device`) survives the driver
/// process being killed and restarted, mid-conversation.
#[test]
fn a_store_backed_device_survives_killing_the_driver() {
    let dir = std::env::temp_dir().join(format!("gochat-interop-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("alice.sqlite").to_string_lossy().into_owned();
    let mut peer = Driver::spawn();
    peer.ok("new_device", json!({"device": "bob", "user": "bob"}));
    let bundle = peer.ok("bundle", json!({"device": "bob"}))["bundle"].clone();
    let mut d = Driver::spawn();
    let id = d.ok("new_device", json!({"device": "alice", "user": "alice", "store": store}))["identity_key"].clone();
    d.ok("init", json!({"device": "alice", "peer": "bob", "bundle": bundle}));
    let m =
        d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(b"one")}))["message"].clone();
    peer.ok("decrypt", json!({"device": "bob", "peer": "alice", "message": m}));
    let reply = peer.ok("encrypt", json!({"device": "bob", "peer": "alice", "plaintext": B64.encode(b"two")}))
        ["message"]
        .clone();
    let got = d.ok("decrypt", json!({"device": "alice", "peer": "bob", "message": reply, "ack": false}));
    assert_eq!(got["redelivered"], json!(false));
    d.err("export", json!({"device": "alice"}), "NotSupported");
    d.child.kill().unwrap();
    let _ = d.child.wait();
    let mut d = Driver::spawn();
    d.err("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(b"x")}), "UnknownDevice");
    d.err("open_device", json!({"device": "alice", "store": store, "passcode": "not the key"}), "WrongKey");
    let reopened = d.ok("open_device", json!({"device": "alice", "store": store}));
    assert_eq!(reopened["identity_key"], id);
    // The unacknowledged result comes back; after `ack`, the message is a duplicate.
    let again = d.ok("decrypt", json!({"device": "alice", "peer": "bob", "message": reply}));
    assert_eq!(again["redelivered"], json!(true));
    assert_eq!(again["plaintext"], json!(B64.encode(b"two")));
    d.err("decrypt", json!({"device": "alice", "peer": "bob", "message": reply}), "Duplicate");
    let m = d.ok("encrypt", json!({"device": "alice", "peer": "bob", "plaintext": B64.encode(b"three")}))["message"]
        .clone();
    let got = peer.ok("decrypt", json!({"device": "bob", "peer": "alice", "message": m}));
    assert_eq!(got["plaintext"], json!(B64.encode(b"three")));
    d.err("new_device", json!({"device": "carol", "user": "carol", "store": store}), "StoreExists");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `group_decrypt` and `channel_receive` on a store-backed device keep their result in
/// the store's inbox with `"ack": false`: after the driver is killed and restarted, the
/// same message returns the same result (`redelivered`) until an `ack`.
#[test]
fn store_backed_group_and_channel_results_survive_killing_the_driver() {
    let dir = std::env::temp_dir().join(format!("gochat-interop-inbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("ana.sqlite").to_string_lossy().into_owned();
    let mut peer = Driver::spawn();
    peer.ok("new_device", json!({"device": "ben", "user": "ben", "now": NOW}));
    peer.ok("new_device", json!({"device": "agency", "user": "agency", "now": NOW}));
    let mut d = Driver::spawn();
    d.ok("new_device", json!({"device": "ana", "user": "ana", "now": NOW, "store": store}));
    // Pairwise sessions both ways (Ana must have pinned Ben to join his group).
    let bundle = peer.ok("bundle", json!({"device": "ben"}))["bundle"].clone();
    d.ok("init", json!({"device": "ana", "peer": "ben", "bundle": bundle}));
    let m = d.encrypt("ana", "ben", "hi");
    peer.decrypt("ben", "ana", &m);
    let r = peer.encrypt("ben", "ana", "hi");
    d.decrypt("ana", "ben", &r);
    let members = json!([member(&mut d, "ana", false)]);
    let created = peer.ok("group_create", json!({"device": "ben", "members": members, "now": NOW}));
    let gid = created["group_id"].clone();
    d.ok("group_join", json!({"device": "ana", "welcome": created["welcome"], "now": NOW}));
    for o in created["outgoing"].as_array().unwrap() {
        d.ok("receive_control", json!({"device": "ana", "peer": "ben", "message": o["message"]}));
    }
    let sent = peer
        .ok("group_encrypt", json!({"device": "ben", "group_id": gid, "plaintext": B64.encode("kept"), "now": NOW}));
    let first =
        d.ok("group_decrypt", json!({"device": "ana", "peer": "ben", "message": sent["message"], "ack": false}));
    assert_eq!(first["redelivered"], json!(false));
    assert_eq!(first["plaintext"], json!(B64.encode("kept")));
    let digest = first["digest"].clone();
    assert_eq!(B64.decode(digest.as_str().unwrap()).unwrap().len(), 32);
    // A channel post, kept too.
    let public = peer.ok("channel_create", json!({"device": "agency", "kind": "public"}));
    let (pid, pkey) = (public["channel_id"].clone(), public["channel_key"].clone());
    d.ok("channel_subscribe", json!({"device": "ana", "channel_id": pid, "channel_key": pkey, "kind": "public"}));
    let post = peer.ok(
        "channel_announce",
        json!({"device": "agency", "channel_id": pid, "content_type": "text", "body": B64.encode("notice"), "now": NOW}),
    )["post"]
        .clone();
    let got = d.ok("channel_receive", json!({"device": "ana", "post": post, "now": NOW, "ack": false}));
    assert_eq!((got["kind"].clone(), got["redelivered"].clone()), (json!("announcement"), json!(false)));
    d.err("group_decrypt", json!({"device": "ana", "peer": "ben", "message": sent["message"], "ack": 1}), "BadRequest");
    d.child.kill().unwrap();
    let _ = d.child.wait();
    let mut d = Driver::spawn();
    d.ok("open_device", json!({"device": "ana", "store": store}));
    let again =
        d.ok("group_decrypt", json!({"device": "ana", "peer": "ben", "message": sent["message"], "ack": false}));
    assert_eq!(again["redelivered"], json!(true));
    assert_eq!((again["plaintext"].clone(), again["digest"].clone()), (first["plaintext"].clone(), digest.clone()));
    assert_eq!(d.ok("ack", json!({"device": "ana", "digest": digest}))["acknowledged"], json!(true));
    d.err("group_decrypt", json!({"device": "ana", "peer": "ben", "message": sent["message"]}), "Duplicate");
    // Without `ack: false` the redelivered post is acknowledged at once.
    let post_again = d.ok("channel_receive", json!({"device": "ana", "post": post, "now": NOW}));
    assert_eq!((post_again["redelivered"].clone(), post_again["digest"].clone()), (json!(true), got["digest"].clone()));
    assert_eq!(post_again["body"], got["body"]);
    d.err("channel_receive", json!({"device": "ana", "post": post, "now": NOW}), "StaleSequence");
    let _ = std::fs::remove_dir_all(&dir);
}
