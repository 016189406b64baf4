//! The group and channel operations of the interop driver (`docs/interop.md`, "Groups"
//! and "Channels"). Each takes the request object and the device it names and returns
//! the result fields; the framing, `id` and errors are handled by `interop.rs`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::channel::{verify_announcement, Announcement, ChannelId, ChannelKind, ContentType, Received};
use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::group::{
    GroupChange, GroupId, GroupMember, GroupSent, Outgoing, RotationPolicy, Withheld, WithheldReason,
};
use gochat_e2ee::{Device, IdentityKey};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, identity_event_json, now_arg, str_arg, Failure, Rng};

/// `verify_announcement`: the stateless check a backend makes (needs no device).
pub fn verify_announcement_op(obj: &Map<String, Value>) -> Result<Value, Failure> {
    let post = b64_arg(obj, "post")?;
    let key = key32_arg(obj, "channel_key")?;
    let a = verify_announcement(&post, &key).map_err(gochat_e2ee::Error::from)?;
    Ok(announcement_json(&a))
}

/// Whether `op` is one of the device ops below.
pub fn is_device_op(op: &str) -> bool {
    OPS.contains(&op)
}

const OPS: &[&str] = &[
    "group_create",
    "group_add",
    "group_remove",
    "group_replace",
    "group_process_commit",
    "group_join",
    "group_encrypt",
    "group_decrypt",
    "group_receive",
    "group_resend_key",
    "group_set_rotation_policy",
    "group_info",
    "group_forget",
    "channel_create",
    "channel_public_key",
    "channel_announce",
    "channel_rotate_signing_key",
    "channel_send_key",
    "channel_rotate_content_key",
    "channel_subscribe",
    "channel_receive",
    "channel_forget",
    "receive_control",
];

/// Runs a device op (one listed in `OPS`) on `device`.
pub fn dispatch(op: &str, device: &mut Device, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    Ok(match op {
        "group_create" => {
            let members = members_arg(obj)?;
            change_json(&device.group_create(&members, now_arg(obj)?, rng)?)
        }
        "group_add" => {
            let id = group_arg(obj)?;
            let members = members_arg(obj)?;
            change_json(&device.group_add(&id, &members, now_arg(obj)?, rng)?)
        }
        "group_remove" => {
            let id = group_arg(obj)?;
            let names = names_arg(obj, "names")?;
            change_json(&device.group_remove(&id, &names, now_arg(obj)?, rng)?)
        }
        "group_replace" => {
            let id = group_arg(obj)?;
            let name = str_arg(obj, "name")?;
            let identity = identity_arg(obj, "identity_key")?;
            change_json(&device.group_replace(&id, name, &identity, now_arg(obj)?, rng)?)
        }
        "group_process_commit" => {
            let commit = b64_arg(obj, "commit")?;
            change_json(&device.group_process_commit(&commit, now_arg(obj)?, rng)?)
        }
        "group_join" => {
            let welcome = b64_arg(obj, "welcome")?;
            change_json(&device.group_join(&welcome, now_arg(obj)?, rng)?)
        }
        "group_encrypt" => {
            let id = group_arg(obj)?;
            let plaintext = b64_arg(obj, "plaintext")?;
            sent_json(&device.group_encrypt(&id, &plaintext, now_arg(obj)?, rng)?)
        }
        "group_decrypt" => {
            let peer = str_arg(obj, "peer")?;
            let message = b64_arg(obj, "message")?;
            group_plaintext_json(&device.group_decrypt(peer, &message)?)
        }
        "group_receive" => {
            let peer = str_arg(obj, "peer")?;
            let message = b64_arg(obj, "message")?;
            control_json(&ControlReceived::SenderKey(device.group_receive(peer, &message, rng)?))
        }
        "receive_control" => {
            let peer = str_arg(obj, "peer")?;
            let message = b64_arg(obj, "message")?;
            control_json(&device.receive_control(peer, &message, rng)?)
        }
        "group_resend_key" => {
            let id = group_arg(obj)?;
            let peer = str_arg(obj, "peer")?;
            let (outgoing, withheld) = device.group_resend_key(&id, peer)?;
            json!({ "outgoing": outgoing_json(&outgoing), "withheld": withheld_json(&withheld) })
        }
        "group_set_rotation_policy" => {
            let id = group_arg(obj)?;
            let max_messages = u64_arg(obj, "max_messages")?;
            let max_messages =
                u32::try_from(max_messages).map_err(|_| Failure::bad_request("`max_messages` must fit in 32 bits"))?;
            let max_age_secs = u64_arg(obj, "max_age_secs")?;
            device.group_set_rotation_policy(&id, RotationPolicy { max_messages, max_age_secs })?;
            json!({})
        }
        "group_info" => {
            let id = group_arg(obj)?;
            let group =
                device.group(&id).ok_or(gochat_e2ee::Error::from(gochat_e2ee::group::GroupError::UnknownGroup))?;
            let members: Vec<Value> = group
                .members()
                .iter()
                .map(|m| json!({ "name": m.name, "identity_key": B64.encode(m.identity.to_bytes()), "admin": m.admin }))
                .collect();
            json!({
                "epoch": group.epoch(),
                "membership_hash": B64.encode(group.membership_hash()),
                "active": group.is_active(),
                "members": members,
            })
        }
        "group_forget" => json!({ "forgotten": device.group_forget(&group_arg(obj)?) }),
        "channel_create" => {
            let id = device.channel_create(kind_arg(obj)?, rng)?;
            json!({ "channel_id": B64.encode(id.0), "channel_key": B64.encode(device.channel_public_key(&id)?) })
        }
        "channel_public_key" => json!({ "channel_key": B64.encode(device.channel_public_key(&channel_arg(obj)?)?) }),
        "channel_announce" => {
            let id = channel_arg(obj)?;
            let content_type = content_type_arg(obj)?;
            let body = b64_arg(obj, "body")?;
            json!({ "post": B64.encode(device.channel_announce(&id, content_type, &body, now_arg(obj)?)?) })
        }
        "channel_rotate_signing_key" => {
            let id = channel_arg(obj)?;
            let post = device.channel_rotate_signing_key(&id, now_arg(obj)?, rng)?;
            json!({ "post": B64.encode(post), "channel_key": B64.encode(device.channel_public_key(&id)?) })
        }
        "channel_send_key" => {
            let id = channel_arg(obj)?;
            let (outgoing, withheld) = device.channel_send_key(&id, &names_arg(obj, "subscribers")?)?;
            json!({ "outgoing": outgoing_json(&outgoing), "withheld": withheld_json(&withheld) })
        }
        "channel_rotate_content_key" => {
            let id = channel_arg(obj)?;
            let r = device.channel_rotate_content_key(&id, &names_arg(obj, "subscribers")?, rng)?;
            json!({ "key_id": r.key_id, "outgoing": outgoing_json(&r.outgoing), "withheld": withheld_json(&r.withheld) })
        }
        "channel_subscribe" => {
            let id = channel_arg(obj)?;
            device.channel_subscribe(id, key32_arg(obj, "channel_key")?, kind_arg(obj)?)?;
            json!({})
        }
        "channel_receive" => {
            let post = b64_arg(obj, "post")?;
            channel_received_json(&device.channel_receive(&post, now_arg(obj)?)?)
        }
        "channel_forget" => json!({ "forgotten": device.channel_forget(&channel_arg(obj)?) }),
        other => return Err(Failure { error: "UnknownOp", detail: format!("unknown op {other:?}") }),
    })
}

/// The result of `group_decrypt`.
pub(crate) fn group_plaintext_json(p: &gochat_e2ee::group::GroupPlaintext) -> Value {
    json!({
        "plaintext": B64.encode(&p.plaintext),
        "sender": p.sender,
        "sender_identity": B64.encode(p.sender_identity.to_bytes()),
        "key_id": p.key_id,
        "iteration": p.iteration,
    })
}

/// The result of `channel_receive`.
pub(crate) fn channel_received_json(r: &Received) -> Value {
    match r {
        Received::Announcement(a) => {
            let mut v = announcement_json(a);
            v["kind"] = json!("announcement");
            v
        }
        Received::KeyRotated { old, new, seq } => {
            json!({ "kind": "key_rotated", "old_key": B64.encode(old), "new_key": B64.encode(new), "seq": seq })
        }
    }
}

pub(crate) fn change_json(c: &GroupChange) -> Value {
    let b64 = |b: &Option<Vec<u8>>| b.as_ref().map(|b| B64.encode(b));
    json!({
        "group_id": B64.encode(c.group_id.0),
        "epoch": c.epoch,
        "commit": b64(&c.commit),
        "welcome": b64(&c.welcome),
        "added": c.change.added,
        "removed": c.change.removed,
        "replaced": c.change.replaced,
        "outgoing": outgoing_json(&c.outgoing),
        "withheld": withheld_json(&c.withheld),
    })
}

fn sent_json(s: &GroupSent) -> Value {
    json!({
        "message": B64.encode(&s.message),
        "rotated": s.rotated,
        "outgoing": outgoing_json(&s.outgoing),
        "withheld": withheld_json(&s.withheld),
    })
}

fn control_json(c: &ControlReceived) -> Value {
    match c {
        ControlReceived::SenderKey(k) => json!({
            "kind": "sender_key",
            "group_id": B64.encode(k.group_id.0),
            "sender": k.sender,
            "key_id": k.key_id,
            "fresh": k.fresh,
            "identity_event": identity_event_json(&k.identity),
        }),
        ControlReceived::ChannelKey(k) => json!({
            "kind": "channel_key",
            "channel_id": B64.encode(k.channel_id.0),
            "sender": k.sender,
            "key_id": k.key_id,
            "identity_event": identity_event_json(&k.identity),
        }),
    }
}

fn announcement_json(a: &Announcement) -> Value {
    json!({
        "channel_id": B64.encode(a.channel_id.0),
        "seq": a.seq,
        "timestamp": a.timestamp,
        "content_type": content_type_name(a.content_type),
        "body": B64.encode(&a.body),
        "signer": B64.encode(a.signer),
    })
}

fn outgoing_json(out: &[Outgoing]) -> Value {
    out.iter().map(|o| json!({ "peer": o.peer, "message": B64.encode(&o.message) })).collect()
}

fn withheld_json(w: &[Withheld]) -> Value {
    w.iter()
        .map(|w| {
            let reason = match w.reason {
                WithheldReason::NoSession => "no_session",
                WithheldReason::IdentityNotApproved => "identity_not_approved",
                WithheldReason::IdentityMismatch => "identity_mismatch",
            };
            json!({ "peer": w.peer, "reason": reason })
        })
        .collect()
}

fn content_type_name(t: ContentType) -> &'static str {
    match t {
        ContentType::Text => "text",
        ContentType::Json => "json",
        ContentType::AttachmentPointer => "attachment_pointer",
    }
}

fn content_type_arg(obj: &Map<String, Value>) -> Result<ContentType, Failure> {
    match str_arg(obj, "content_type")? {
        "text" => Ok(ContentType::Text),
        "json" => Ok(ContentType::Json),
        "attachment_pointer" => Ok(ContentType::AttachmentPointer),
        other => Err(Failure::bad_request(format!("unknown content_type {other:?}"))),
    }
}

fn kind_arg(obj: &Map<String, Value>) -> Result<ChannelKind, Failure> {
    match str_arg(obj, "kind")? {
        "public" => Ok(ChannelKind::Public),
        "restricted" => Ok(ChannelKind::Restricted),
        other => Err(Failure::bad_request(format!("unknown channel kind {other:?}"))),
    }
}

fn u64_arg(obj: &Map<String, Value>, name: &str) -> Result<u64, Failure> {
    obj.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Failure::bad_request(format!("`{name}` must be a non-negative integer")))
}

pub(crate) fn key32_arg(obj: &Map<String, Value>, name: &str) -> Result<[u8; 32], Failure> {
    b64_arg(obj, name)?.try_into().map_err(|_| Failure::bad_request(format!("`{name}` must be 32 bytes")))
}

fn group_arg(obj: &Map<String, Value>) -> Result<GroupId, Failure> {
    Ok(GroupId(key32_arg(obj, "group_id")?))
}

fn channel_arg(obj: &Map<String, Value>) -> Result<ChannelId, Failure> {
    Ok(ChannelId(key32_arg(obj, "channel_id")?))
}

pub(crate) fn identity_arg(obj: &Map<String, Value>, name: &str) -> Result<IdentityKey, Failure> {
    Ok(IdentityKey::from_bytes(&b64_arg(obj, name)?).map_err(gochat_e2ee::Error::from)?)
}

pub(crate) fn array_arg<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Vec<Value>, Failure> {
    match obj.get(name) {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Failure::bad_request(format!("`{name}` must be an array"))),
        None => Err(Failure::bad_request(format!("missing `{name}`"))),
    }
}

fn names_arg(obj: &Map<String, Value>, name: &str) -> Result<Vec<String>, Failure> {
    array_arg(obj, name)?
        .iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| Failure::bad_request(format!("`{name}` must hold strings")))
        })
        .collect()
}

/// `members`: an array of `{"name": string, "identity_key": base64, "admin": bool}`.
fn members_arg(obj: &Map<String, Value>) -> Result<Vec<GroupMember>, Failure> {
    array_arg(obj, "members")?
        .iter()
        .map(|v| {
            let m = v.as_object().ok_or_else(|| Failure::bad_request("`members` must hold objects"))?;
            let admin = match m.get("admin") {
                Some(Value::Bool(b)) => *b,
                None => false,
                Some(_) => return Err(Failure::bad_request("`admin` must be a boolean")),
            };
            Ok(GroupMember { name: str_arg(m, "name")?.to_owned(), identity: identity_arg(m, "identity_key")?, admin })
        })
        .collect()
}
