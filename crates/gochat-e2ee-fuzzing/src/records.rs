//! The `state_record` target (`docs/protocol.md` §8.3): [`Device::apply_record`] of
//! arbitrary bytes under one of a fixture device's record keys.
//!
//! Input: one selector byte (the key: index into the fixture's record keys, modulo
//! their count; bit 7 set means "apply a deletion" instead), then the record bytes.
//! Asserted: no panic; a refusal leaves the device's state digest unchanged; an
//! accepted record leaves a device whose records rebuild it exactly
//! ([`Device::from_records`]) and whose re-encoded record is accepted again to the same
//! state.

use std::sync::OnceLock;

use gochat_e2ee::channel::ChannelKind;
use gochat_e2ee::records::RecordKey;
use gochat_e2ee::Device;

use crate::fixtures::Seed;

struct Fixture {
    device: Device,
    keys: Vec<RecordKey>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        // `ben` in a group with received sender keys and sessions with three peers,
        // plus a channel it publishes to and subscribes to.
        let mut device = crate::groups::get().message_ben.fork_for_testing();
        let mut r = crate::rng(0x5EC0);
        let id = device.channel_create(ChannelKind::Public, &mut r).expect("fixture");
        let key = device.channel_public_key(&id).expect("fixture");
        device.channel_subscribe(id, key, ChannelKind::Public).expect("fixture");
        let _ = device.take_changes();
        let keys = device.record_keys();
        Fixture { device, keys }
    })
}

/// The seeds: every record of the fixture, as it is, and some broken ones.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let mut out = Vec::new();
    const NAMES: [&str; 8] = [
        "valid-account",
        "valid-settings",
        "valid-record-2",
        "valid-record-3",
        "valid-record-4",
        "valid-record-5",
        "valid-record-6",
        "valid-record-7",
    ];
    for (i, key) in f.keys.iter().enumerate().take(NAMES.len()) {
        let value = f.device.encode_record(key).expect("fixture record");
        out.push(("state_record", (NAMES[i], [&[i as u8][..], &value[..]].concat())));
    }
    let peer = f.keys.iter().position(|k| k.kind() == gochat_e2ee::records::RecordKind::Peer).unwrap_or(0);
    let value = f.device.encode_record(&f.keys[peer]).expect("fixture record");
    out.push(("state_record", ("invalid-truncated-peer", [&[peer as u8][..], &value[..value.len() - 1]].concat())));
    out.push(("state_record", ("invalid-version", [&[peer as u8, 0x02][..], &value[1..]].concat())));
    out.push(("state_record", ("invalid-delete-account", vec![0x80])));
    out.push(("state_record", ("valid-delete-peer", vec![0x80 | peer as u8])));
    out
}

/// `state_record`: see the module documentation. Returns whether the record was accepted.
pub fn state_record(data: &[u8]) -> bool {
    let Some((&selector, value)) = data.split_first() else { return false };
    let f = get();
    let key = &f.keys[usize::from(selector & 0x7F) % f.keys.len()];
    let value = (selector & 0x80 == 0).then_some(value);
    let mut device = f.device.fork_for_testing();
    let before = device.state_digest();
    match device.apply_record(key, value) {
        Err(_) => {
            assert_eq!(before, device.state_digest(), "a refused record changed the device");
            false
        }
        Ok(()) => {
            assert!(device.take_changes().is_empty(), "an applied record is not an unsaved change");
            let digest = device.state_digest();
            let rebuilt = Device::from_records(device.records()).expect("an accepted record rebuilds");
            assert_eq!(rebuilt.state_digest(), digest, "the records do not rebuild the device");
            let again = device.encode_record(key);
            device.apply_record(key, again.as_deref().map(|v| &v[..])).expect("a re-encoded record is accepted");
            assert_eq!(device.state_digest(), digest, "re-applying the re-encoded record changed the state");
            true
        }
    }
}
