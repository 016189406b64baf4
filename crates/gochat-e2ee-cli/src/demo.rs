//! `gochat-e2ee demo`: Alice and Bob talk through an untrusted server.
//!
//! Each row shows what the server relays (the message type and its size, never any
//! content) next to what each client does. The network delays one message so that it
//! arrives out of order, and every reply moves the Double Ratchet forward a DH step.

use gochat_e2ee::session::{message_kind, MessageKind};
use gochat_e2ee::{Device, PreKeyBundle};
use rand_core::UnwrapErr;

type Rng = UnwrapErr<getrandom::SysRng>;

const SERVER_W: usize = 34;
const CLIENT_W: usize = 44;

/// A message in flight on the server.
struct Envelope {
    label: String,
    from: &'static str,
    bytes: Vec<u8>,
}

struct Chat {
    alice: Device,
    bob: Device,
    rng: Rng,
    step: usize,
    /// Ratchet keys seen from each side with the highest counter read on each, to
    /// point out DH ratchet steps and out-of-order delivery.
    seen_from_alice: Vec<([u8; 32], u32)>,
    seen_from_bob: Vec<([u8; 32], u32)>,
}

fn kind_name(bytes: &[u8]) -> &'static str {
    match message_kind(bytes) {
        Some(MessageKind::PreKey) => "prekey message",
        Some(MessageKind::Ratchet) => "ratchet message",
        None => "unknown",
    }
}

/// The sender's ratchet public key and message counter: public header fields, read at
/// their fixed offsets.
fn ratchet_header(bytes: &[u8]) -> Option<([u8; 32], u32)> {
    let offset = match message_kind(bytes)? {
        MessageKind::Ratchet => 2,
        MessageKind::PreKey => {
            // type, version, identity (66), signed prekey id (4), flag (1),
            // [one-time prekey id (4)], ML-KEM prekey id (4), base key (32), KEM ciphertext (1568)
            let flag = *bytes.get(2 + 66 + 4)?;
            2 + 66 + 4 + 1 + if flag == 1 { 4 } else { 0 } + 4 + 32 + 1568
        }
    };
    let key = bytes.get(offset..offset + 32)?.try_into().ok()?;
    let counter = u32::from_be_bytes(bytes.get(offset + 36..offset + 40)?.try_into().ok()?);
    Some((key, counter))
}

fn row(step: &str, server: &str, alice: &str, bob: &str) {
    let line = format!("{step:>3}  {server:<SERVER_W$}  {alice:<CLIENT_W$}  {bob}");
    println!("{}", line.trim_end());
}

fn quote(pt: &[u8]) -> String {
    format!("\"{}\"", String::from_utf8_lossy(pt))
}

impl Chat {
    fn next_step(&mut self) -> String {
        self.step += 1;
        self.step.to_string()
    }

    fn send(&mut self, from: &'static str, label: &str, text: &str) -> Result<Envelope, String> {
        let bytes = if from == "alice" {
            self.alice.encrypt("bob", text.as_bytes())
        } else {
            self.bob.encrypt("alice", text.as_bytes())
        }
        .map_err(|e| format!("{from} could not encrypt: {e}"))?;
        let step = self.next_step();
        let arrow = if from == "alice" { "A→B" } else { "B→A" };
        let server = format!("{label} {arrow} {} {} B", kind_name(&bytes), bytes.len());
        let client = format!("sends {}", quote(text.as_bytes()));
        if from == "alice" {
            row(&step, &server, &client, "");
        } else {
            row(&step, &server, "", &client);
        }
        Ok(Envelope { label: label.to_owned(), from, bytes })
    }

    fn deliver(&mut self, env: &Envelope) -> Result<(), String> {
        let step = self.next_step();
        let (receiver, peer, seen) = if env.from == "alice" {
            (&mut self.bob, "alice", &mut self.seen_from_alice)
        } else {
            (&mut self.alice, "bob", &mut self.seen_from_bob)
        };
        let had_session = receiver.session_record(peer).is_some_and(|r| r.has_current());
        let header = ratchet_header(&env.bytes);
        let client = match receiver.decrypt(peer, &env.bytes, &mut self.rng) {
            Ok(pt) => {
                let mut notes = Vec::new();
                if !had_session {
                    notes.push("new session (PQXDH)");
                }
                if let Some((key, counter)) = header {
                    match seen.iter_mut().find(|(k, _)| *k == key) {
                        None => {
                            notes.push("new ratchet key: DH step");
                            seen.push((key, counter));
                        }
                        Some((_, max)) if counter < *max => notes.push("late: skipped key"),
                        Some((_, max)) => {
                            *max = counter;
                            notes.push("same chain");
                        }
                    }
                }
                (format!("reads {}", quote(&pt.plaintext)), format!("  ({})", notes.join("; ")))
            }
            Err(e) => (format!("refuses it: {}", e.code().as_str()), String::new()),
        };
        let (client, note) = client;
        let server = format!("{} delivered", env.label);
        if env.from == "alice" {
            row(&step, &server, "", &client);
            if !note.is_empty() {
                row("", "", "", &note);
            }
        } else {
            row(&step, &server, &client, "");
            if !note.is_empty() {
                row("", "", &note, "");
            }
        }
        Ok(())
    }
}

/// Runs the demo, printing to stdout.
pub fn run() -> Result<(), String> {
    let mut rng: Rng = UnwrapErr(getrandom::SysRng);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let alice = Device::new("alice", now, &mut rng);
    let mut bob = Device::new("bob", now, &mut rng);
    bob.account_mut().generate_one_time_prekeys(5, &mut rng).map_err(|e| e.to_string())?;
    bob.account_mut().generate_pq_prekeys(5, now, &mut rng).map_err(|e| e.to_string())?;

    println!("GoChat E2EE demo (library {})", gochat_e2ee::VERSION);
    println!();
    println!("Alice's identity fingerprint: {}", alice.identity().fingerprint_hex());
    println!("Bob's identity fingerprint:   {}", bob.identity().fingerprint_hex());
    let bundle = bob.next_bundle().map_err(|e| e.to_string())?;
    let bundle_bytes = bundle.to_bytes();
    println!();
    println!(
        "Bob uploads a prekey bundle ({} bytes): signed X25519 prekey #{}, one-time X25519 prekey #{}, ML-KEM-1024 prekey #{}.",
        bundle_bytes.len(),
        bundle.signed_prekey().id,
        bundle.one_time_prekey().map_or(0, |k| k.id),
        bundle.pq_prekey().id,
    );
    let fetched = PreKeyBundle::from_bytes(&bundle_bytes).map_err(|e| e.to_string())?;
    println!("Alice fetches it, checks every signature against Bob's identity, and runs PQXDH.");
    println!();

    let mut chat = Chat { alice, bob, rng, step: 0, seen_from_alice: Vec::new(), seen_from_bob: Vec::new() };
    let first = chat.alice.initiate("bob", &fetched, &mut chat.rng).map_err(|e| e.to_string())?;
    println!("Alice's app is told: {first:?} (trust on first use: Bob's identity is now pinned).");
    println!();

    row("#", "SERVER SEES (type, size)", "ALICE", "BOB");
    row("", &"-".repeat(SERVER_W), &"-".repeat(CLIENT_W), &"-".repeat(CLIENT_W));
    let m1 = chat.send("alice", "m1", "Hi Bob, it's Alice.")?;
    let m2 = chat.send("alice", "m2", "This one gets delayed.")?;
    let m3 = chat.send("alice", "m3", "Are you there?")?;
    chat.deliver(&m1)?;
    chat.deliver(&m3)?;
    let r1 = chat.send("bob", "r1", "Hi Alice! Got m1 and m3.")?;
    chat.deliver(&r1)?;
    chat.deliver(&m2)?;
    let m4 = chat.send("alice", "m4", "Now on a fresh ratchet key.")?;
    chat.deliver(&m4)?;
    let r2 = chat.send("bob", "r2", "Me too. Sending two...")?;
    let r3 = chat.send("bob", "r3", "...which you get in reverse.")?;
    chat.deliver(&r3)?;
    chat.deliver(&r2)?;
    let m5 = chat.send("alice", "m5", "A replayed copy of this is refused.")?;
    chat.deliver(&m5)?;
    chat.deliver(&m5)?;
    println!();
    println!("The server only ever sees the message type and a size padded to 64-byte blocks.");
    println!("Prekey messages carry the PQXDH header (X25519 base key + ML-KEM-1024 ciphertext)");
    println!("until Bob's first reply arrives; after that Alice sends plain ratchet messages.");
    reinstall(&mut chat, now)
}

/// Bob reinstalls (a new identity) and writes again; then a server tries the same with an
/// identity of its own. Alice's app is told each time and nothing reaches an identity she
/// has not approved.
fn reinstall(chat: &mut Chat, now: u64) -> Result<(), String> {
    println!();
    println!("Bob reinstalls the app: a brand-new identity, and he writes to Alice again.");
    let mut new_bob = Device::new("bob", now, &mut chat.rng);
    let bundle = chat.alice.next_bundle().map_err(|e| e.to_string())?;
    let _ = new_bob.initiate("alice", &bundle, &mut chat.rng).map_err(|e| e.to_string())?;
    let m = new_bob.encrypt("alice", b"New phone, same Bob.").map_err(|e| e.to_string())?;
    let got = chat.alice.decrypt("bob", &m, &mut chat.rng).map_err(|e| e.to_string())?;
    println!("  Alice reads {} and her app is told:", quote(&got.plaintext));
    println!("    {:?}", got.identity);
    match chat.alice.encrypt("bob", b"hi?") {
        Err(e) => println!("  Sending to \"bob\" is refused until the user decides: {}", e.code().as_str()),
        Ok(_) => return Err("sending to an unapproved identity must be refused".into()),
    }
    println!("  Alice compares safety numbers with Bob in person and approves the new identity.");
    chat.alice.approve_identity("bob", new_bob.identity()).map_err(|e| e.to_string())?;
    let reply = chat.alice.encrypt("bob", b"Welcome back, Bob.").map_err(|e| e.to_string())?;
    let got = new_bob.decrypt("alice", &reply, &mut chat.rng).map_err(|e| e.to_string())?;
    println!("  New Bob reads {} ({:?}).", quote(&got.plaintext), got.identity);
    Ok(())
}
