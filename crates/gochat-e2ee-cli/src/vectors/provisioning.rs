//! `provisioning.json`: linking a device (`docs/protocol.md` §15.9). The library makes an
//! offer and seals a payload to it with recorded randomness; [`run_model`] re-derives the
//! offer, the key schedule (offer hash, X25519, HKDF, AAD) and the message with
//! x25519-dalek, sha2, hkdf and aes-gcm alone (never the library's encoders), and decodes
//! the payload by the spec.

use gochat_e2ee::keys::IdentityKeyPair;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning::{seal, LinkPayload, ProvisioningError, ProvisioningSecret};
use serde_json::{json, Value};

use super::rng::RecordingRng;
use super::{arr, hex_field, hv, prim, seed, str_field, u64_field};

pub(crate) const NAME: &str = "provisioning";
pub(crate) const DESCRIPTION: &str = "Linking a device (§15.9): for each case, the new device's identity, device id and time, the one-time provisioning secret and the phone's ephemeral secret (recorded ChaCha20 draws), the payload (user id, master public key, endorsement and device list bytes); the offer (0x57) and the provisioning message (0x58) the library produced, the payload the new device opened, and the result of opening the message a second time (ProvisioningUsed) and of opening it with its last byte flipped (AuthenticationFailed). Intermediates: the offer hash, the X25519 output, the HKDF key and nonce, the AAD and the payload encoding.";

/// §15.9.3.
const LABEL: &[u8] = b"GoChat-E2EE v1 provisioning";

struct Case {
    device: &'static str,
    user: &'static str,
    endorsement_len: usize,
    list_len: usize,
    created_at: u64,
    sealed_at: u64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            device: "web-1",
            user: "aminah@mof.gov.my",
            endorsement_len: 140,
            list_len: 300,
            created_at: 1_700_000_000,
            sealed_at: 1_700_000_030,
        },
        Case {
            device: "Desktop_2.office-PC",
            user: "ketua.setiausaha@jpm.gov.my",
            endorsement_len: 1,
            list_len: 1,
            created_at: 1_700_000_060,
            sealed_at: 1_700_000_000,
        },
    ]
}

fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

fn code(e: ProvisioningError) -> Value {
    json!(gochat_e2ee::Error::from(e).code().as_str())
}

pub(crate) fn run_library() -> Result<(Value, Value), String> {
    let lib = |e: ProvisioningError| format!("library: {e}");
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for (i, c) in cases().into_iter().enumerate() {
        let mut id_rng = RecordingRng::from_seed(seed(NAME, &format!("identity-{i}")));
        let identity = *IdentityKeyPair::generate(&mut id_rng).public();
        let master = *IdentityKeyPair::generate(&mut id_rng).public().signing_key_bytes();
        let device = DeviceId::parse(c.device).map_err(|e| e.to_string())?;
        let mut new_rng = RecordingRng::from_seed(seed(NAME, &format!("new-device-{i}")));
        let (mut secret, offer) = ProvisioningSecret::new(&identity, device, c.created_at, &mut new_rng);
        let provisioning_secret = new_rng.take().concat();
        let payload = LinkPayload {
            user: UserId::parse(c.user).map_err(|e| e.to_string())?,
            master_public: master,
            endorsement: filler(c.endorsement_len, 0x56),
            device_list: filler(c.list_len, 0x55),
        };
        let mut phone_rng = RecordingRng::from_seed(seed(NAME, &format!("phone-{i}")));
        let message = seal(&offer, &payload, c.sealed_at, &mut phone_rng).map_err(lib)?.to_bytes();
        let ephemeral_secret = phone_rng.take().concat();
        let mut tampered = message.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        let tampered_open = secret.open(&tampered).map(|_| json!("opened")).unwrap_or_else(code);
        let opened = secret.open(&message).map_err(lib)?;
        let second_open = secret.open(&message).map(|_| json!("opened")).unwrap_or_else(code);
        ins.push(json!({
            "identity": hv(&identity.to_bytes()),
            "device_id": c.device,
            "created_at": c.created_at,
            "provisioning_secret": hv(&provisioning_secret),
            "sealed_at": c.sealed_at,
            "ephemeral_secret": hv(&ephemeral_secret),
            "user": c.user,
            "master_public": hv(&master),
            "endorsement": hv(&payload.endorsement),
            "device_list": hv(&payload.device_list),
        }));
        outs.push(json!({
            "offer": hv(&offer.to_bytes()),
            "message": hv(&message),
            "opened": {
                "user": opened.user.as_str(),
                "master_public": hv(&opened.master_public),
                "endorsement": hv(&opened.endorsement),
                "device_list": hv(&opened.device_list),
            },
            "open_tampered": tampered_open,
            "open_again": second_open,
        }));
    }
    Ok((json!({"cases": ins}), json!({"cases": outs})))
}

fn arr32(v: &Value, name: &str) -> Result<[u8; 32], String> {
    hex_field(v, name)?.try_into().map_err(|_| format!("field `{name}` is not 32 bytes"))
}

/// §15.9.2: decodes a payload by the spec (the lengths and the order).
fn decode_payload(p: &[u8]) -> Result<Value, String> {
    let bad = || "model: payload does not decode".to_string();
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = p.get(at..at + n).ok_or_else(bad)?;
        at += n;
        Ok(s)
    };
    if take(1)? != [1] {
        return Err(bad());
    }
    let ulen = usize::from(take(1)?[0]);
    let user = String::from_utf8(take(ulen)?.to_vec()).map_err(|_| bad())?;
    let master = take(32)?.to_vec();
    let elen = take(2)?;
    let elen = usize::from(u16::from_be_bytes([elen[0], elen[1]]));
    let endorsement = take(elen)?.to_vec();
    let llen = take(2)?;
    let llen = usize::from(u16::from_be_bytes([llen[0], llen[1]]));
    let list = take(llen)?.to_vec();
    if at != p.len() {
        return Err(bad());
    }
    Ok(json!({"user": user, "master_public": hv(&master), "endorsement": hv(&endorsement), "device_list": hv(&list)}))
}

pub(crate) fn run_model(inputs: &Value) -> Result<(Value, Value), String> {
    let (mut inter, mut outs) = (Vec::new(), Vec::new());
    for c in arr(inputs, "cases")? {
        let identity = hex_field(c, "identity")?;
        let device = str_field(c, "device_id")?;
        let user = str_field(c, "user")?;
        let p = arr32(c, "provisioning_secret")?;
        let e = arr32(c, "ephemeral_secret")?;
        let (endorsement, list) = (hex_field(c, "endorsement")?, hex_field(c, "device_list")?);
        // §15.9.1: type, version, P, identity, u8 device id, u64 created_at.
        let offer = [
            &[0x57, 0x01][..],
            &prim::x25519_public(&p),
            &identity,
            &[device.len() as u8],
            device.as_bytes(),
            &u64_field(c, "created_at")?.to_be_bytes(),
        ]
        .concat();
        // §15.9.2.
        let payload = [
            &[0x01, user.len() as u8][..],
            user.as_bytes(),
            &hex_field(c, "master_public")?,
            &(endorsement.len() as u16).to_be_bytes(),
            &endorsement,
            &(list.len() as u16).to_be_bytes(),
            &list,
        ]
        .concat();
        // §15.9.3.
        let h = prim::sha256(&[&offer]);
        let eph_pub = prim::x25519_public(&e);
        let shared = prim::x25519(&e, &prim::x25519_public(&p));
        if shared != prim::x25519(&p, &eph_pub) || shared == [0; 32] {
            return Err("model: X25519 does not agree".into());
        }
        let okm = prim::hkdf(&h, &shared, LABEL, 44)?;
        let key: [u8; 32] = okm[..32].try_into().map_err(|_| "okm")?;
        let nonce: [u8; 12] = okm[32..].try_into().map_err(|_| "okm")?;
        let aad = [&[0x58, 0x01][..], &eph_pub, &h].concat();
        let ct = prim::aes_gcm_seal(&key, &nonce, &aad, &payload)?;
        let message = [&[0x58, 0x01][..], &eph_pub, &ct].concat();
        // The new device's side: open, then decode by the spec.
        let opened = decode_payload(&prim::aes_gcm_open(&key, &nonce, &aad, &ct)?)?;
        let mut tampered = ct.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        let open_tampered =
            if prim::aes_gcm_open(&key, &nonce, &aad, &tampered).is_ok() { "opened" } else { "AuthenticationFailed" };
        inter.push(json!({
            "offer_hash": hv(&h),
            "ephemeral_public": hv(&eph_pub),
            "shared": hv(&shared),
            "key": hv(&key),
            "nonce": hv(&nonce),
            "aad": hv(&aad),
            "payload": hv(&payload),
        }));
        outs.push(json!({
            "offer": hv(&offer),
            "message": hv(&message),
            "opened": opened,
            "open_tampered": open_tampered,
            // §15.9.3: the first success spends the secret.
            "open_again": "ProvisioningUsed",
        }));
    }
    Ok((json!({"cases": inter}), json!({"cases": outs})))
}
