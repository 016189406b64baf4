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
