//! `gochat-e2ee demo group` and `demo channel`: a Sender Keys group with a removal, and
//! an agency's public and restricted channels, through an untrusted server.
//!
//! As in the 1:1 demo, each line shows what the server relays (type and size, never
//! content) and what the clients do with it.

use std::collections::BTreeMap;

use gochat_e2ee::channel::{ChannelKind, ContentType, Received};
use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::group::{GroupId, GroupMember, Outgoing};
use gochat_e2ee::Device;
use rand_core::UnwrapErr;

type Rng = UnwrapErr<getrandom::SysRng>;

/// Devices by name, each with a pairwise session with every other.
struct World {
    devices: BTreeMap<&'static str, Device>,
    now: u64,
}

fn err(e: gochat_e2ee::Error) -> String {
    e.to_string()
}

fn type_name(bytes: &[u8]) -> &'static str {
    match bytes.first() {
        Some(0x21) => "group commit",
        Some(0x22) => "group welcome",
        Some(0x24) => "group message",
        Some(0x30) => "announcement",
        Some(0x31) => "channel key rotation",
        Some(0x32) => "restricted announcement",
        Some(0x03 | 0x04) => "pairwise message",
        _ => "unknown",
    }
}

fn server(bytes: &[u8]) -> String {
    format!("[server relays {} ({} B)]", type_name(bytes), bytes.len())
}

impl World {
    fn new(names: &[&'static str], now: u64) -> Result<World, String> {
        let mut rng: Rng = UnwrapErr(getrandom::SysRng);
        let mut devices = BTreeMap::new();
        for n in names {
            let mut d = Device::new(n, now, &mut rng);
            d.account_mut().generate_one_time_prekeys(names.len(), &mut rng).map_err(|e| e.to_string())?;
            d.account_mut().generate_pq_prekeys(names.len(), now, &mut rng).map_err(|e| e.to_string())?;
            devices.insert(*n, d);
        }
        let mut w = World { devices, now };
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                w.connect(a, b)?;
            }
        }
        Ok(w)
    }

    fn dev(&mut self, name: &str) -> Result<&mut Device, String> {
        self.devices.get_mut(name).ok_or_else(|| format!("no device {name}"))
    }

    /// A pairwise session from `a` to `b`, answered, so both can send.
    fn connect(&mut self, a: &str, b: &str) -> Result<(), String> {
        let bundle = self.dev(b)?.next_bundle().map_err(err)?;
        let mut rng = UnwrapErr(getrandom::SysRng);
        let _ = self.dev(a)?.initiate(b, &bundle, &mut rng).map_err(err)?;
        let m = self.dev(a)?.encrypt(b, b"hi").map_err(err)?;
        let _ = self.dev(b)?.decrypt(a, &m, &mut rng).map_err(err)?;
        let r = self.dev(b)?.encrypt(a, b"hi").map_err(err)?;
        let _ = self.dev(a)?.decrypt(b, &r, &mut rng).map_err(err)?;
        Ok(())
    }

    fn member(&self, name: &str) -> Result<GroupMember, String> {
        let d = self.devices.get(name).ok_or_else(|| format!("no device {name}"))?;
        Ok(GroupMember { name: name.to_owned(), identity: *d.identity(), admin: false })
    }

    /// Delivers pairwise control messages from `from`.
    fn control(&mut self, from: &str, outgoing: &[Outgoing]) -> Result<(), String> {
        for o in outgoing {
            let mut rng = UnwrapErr(getrandom::SysRng);
            let what = match self.dev(&o.peer)?.receive_control(from, &o.message, &mut rng).map_err(err)? {
                ControlReceived::SenderKey(k) => format!("sender key #{:08x}", k.key_id),
                ControlReceived::ChannelKey(k) => format!("channel content key #{:08x}", k.key_id),
            };
            println!("  {from} → {}: {} — {} accepts {what}", o.peer, server(&o.message), o.peer);
        }
        Ok(())
    }

    fn group_send(&mut self, from: &str, gid: &GroupId, text: &str, readers: &[&str]) -> Result<(), String> {
        let now = self.now;
        let mut rng = UnwrapErr(getrandom::SysRng);
        let sent = self.dev(from)?.group_encrypt(gid, text.as_bytes(), now, &mut rng).map_err(err)?;
        if sent.rotated {
            println!("  {from} starts a new sender-key generation first:");
            self.control(from, &sent.outgoing)?;
        }
        println!("  {from} sends \"{text}\" {}", server(&sent.message));
        for r in readers {
            match self.dev(r)?.group_decrypt(from, &sent.message) {
                Ok(p) => println!("      {r} reads \"{}\"", String::from_utf8_lossy(&p.plaintext)),
                Err(e) => println!("      {r} cannot read it: {}", e.code().as_str()),
            }
        }
        Ok(())
    }
}

/// The group part: create, talk, remove a member, show that it reads nothing new.
pub fn group(now: u64) -> Result<(), String> {
    println!("== Group (Sender Keys) ==");
    let mut w = World::new(&["alice", "bob", "carol"], now)?;
    println!("Alice, Bob and Carol have pairwise sessions. Alice creates a group with Bob and Carol.");
    let members = [w.member("bob")?, w.member("carol")?];
    let mut rng = UnwrapErr(getrandom::SysRng);
    let created = w.dev("alice")?.group_create(&members, now, &mut rng).map_err(err)?;
    let gid = created.group_id;
    let welcome = created.welcome.clone().unwrap_or_default();
    println!("  alice → bob, carol: {} (signed by Alice, lists every member)", server(&welcome));
    let mut joins = Vec::new();
    for who in ["bob", "carol"] {
        joins.push((who, w.dev(who)?.group_join(&welcome, now, &mut rng).map_err(err)?));
        println!("      {who} checks the signature and joins at epoch 0");
    }
    w.control("alice", &created.outgoing)?;
    for (who, j) in &joins {
        w.control(who, &j.outgoing)?;
    }
    w.group_send("alice", &gid, "Meeting at 10.", &["bob", "carol"])?;
    w.group_send("carol", &gid, "Noted.", &["alice", "bob"])?;

    println!("Alice removes Carol: a signed commit, and every remaining member rotates its sender key.");
    let removed = w.dev("alice")?.group_remove(&gid, &["carol".to_owned()], now, &mut rng).map_err(err)?;
    let commit = removed.commit.clone().unwrap_or_default();
    println!("  alice → bob, carol: {}", server(&commit));
    let processed = w.dev("bob")?.group_process_commit(&commit, now, &mut rng).map_err(err)?;
    println!("      bob applies it: epoch {}, members alice and bob", processed.epoch);
    w.control("alice", &removed.outgoing)?;
    w.control("bob", &processed.outgoing)?;
    w.group_send("bob", &gid, "Carol is out; this is for Alice only.", &["alice", "carol"])?;
    let forged = {
        let mut c = commit.clone();
        if let Some(b) = c.last_mut() {
            *b ^= 1;
        }
        c
    };
    match w.dev("carol")?.group_process_commit(&forged, now, &mut rng) {
        Err(e) => println!("  A tampered copy of the commit is refused: {}", e.code().as_str()),
        Ok(_) => return Err("a tampered commit must be refused".into()),
    }
    println!();
    Ok(())
}

/// The channel part: public and restricted posts, a replay, a removed subscriber.
pub fn channel(now: u64) -> Result<(), String> {
    println!("== Official channels ==");
    let mut w = World::new(&["agency", "ana", "ben"], now)?;
    let mut rng = UnwrapErr(getrandom::SysRng);
    let public = w.dev("agency")?.channel_create(ChannelKind::Public, &mut rng).map_err(err)?;
    let key = w.dev("agency")?.channel_public_key(&public).map_err(err)?;
    println!("The agency publishes the channel key in its directory; Ana and Ben pin it on subscribing.");
    for who in ["ana", "ben"] {
        w.dev(who)?.channel_subscribe(public, key, ChannelKind::Public).map_err(err)?;
    }
    let post =
        w.dev("agency")?.channel_announce(&public, ContentType::Text, b"Office closed on Friday.", now).map_err(err)?;
    println!("  agency posts to everyone: {}", server(&post));
    for who in ["ana", "ben"] {
        if let Received::Announcement(a) = w.dev(who)?.channel_receive(&post, now).map_err(err)? {
            println!("      {who} verifies and shows #{}: \"{}\"", a.seq, String::from_utf8_lossy(&a.body));
        }
    }
    match w.dev("ana")?.channel_receive(&post, now) {
        Err(e) => println!("  The server replays it: Ana refuses it ({})", e.code().as_str()),
        Ok(_) => return Err("a replayed post must be refused".into()),
    }

    let restricted = w.dev("agency")?.channel_create(ChannelKind::Restricted, &mut rng).map_err(err)?;
    let rkey = w.dev("agency")?.channel_public_key(&restricted).map_err(err)?;
    println!("A restricted channel: its content key goes to each subscriber over the pairwise session.");
    for who in ["ana", "ben"] {
        w.dev(who)?.channel_subscribe(restricted, rkey, ChannelKind::Restricted).map_err(err)?;
    }
    let subscribers = ["ana".to_owned(), "ben".to_owned()];
    let (outgoing, _) = w.dev("agency")?.channel_send_key(&restricted, &subscribers).map_err(err)?;
    w.control("agency", &outgoing)?;
    let post =
        w.dev("agency")?.channel_announce(&restricted, ContentType::Text, b"Briefing at 0900.", now).map_err(err)?;
    println!("  agency posts: {} (encrypted; the server cannot read it)", server(&post));
    for who in ["ana", "ben"] {
        if let Received::Announcement(a) = w.dev(who)?.channel_receive(&post, now).map_err(err)? {
            println!("      {who} reads \"{}\"", String::from_utf8_lossy(&a.body));
        }
    }
    println!("Ben leaves the unit: the agency rotates the content key and sends it to Ana only.");
    let rekey = w.dev("agency")?.channel_rotate_content_key(&restricted, &subscribers[..1], &mut rng).map_err(err)?;
    w.control("agency", &rekey.outgoing)?;
    let post =
        w.dev("agency")?.channel_announce(&restricted, ContentType::Text, b"New rota attached.", now).map_err(err)?;
    println!("  agency posts: {}", server(&post));
    for who in ["ana", "ben"] {
        match w.dev(who)?.channel_receive(&post, now) {
            Ok(Received::Announcement(a)) => println!("      {who} reads \"{}\"", String::from_utf8_lossy(&a.body)),
            Ok(_) => {}
            Err(e) => println!("      {who} cannot read it: {}", e.code().as_str()),
        }
    }
    println!();
    Ok(())
}
