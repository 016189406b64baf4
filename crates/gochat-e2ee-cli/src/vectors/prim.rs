//! The raw primitives, called directly from their crates (not through the library), for
//! the independent re-derivation of every vector value.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use aes_gcm_siv::Aes256GcmSiv;
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ml_kem::ml_kem_1024::{Ciphertext, DecapsulationKey};
use ml_kem::{Decapsulate, KeyExport, Seed};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// X25519 public key of a private scalar.
pub fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

/// X25519(private, public).
pub fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    StaticSecret::from(*private).diffie_hellman(&PublicKey::from(*public)).to_bytes()
}

/// Ed25519 public key of a seed.
pub fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Ed25519 signature (RFC 8032, deterministic) of `msg`.
pub fn ed25519_sign(seed: &[u8; 32], msg: &[u8]) -> [u8; 64] {
    SigningKey::from_bytes(seed).sign(msg).to_bytes()
}

/// Strict Ed25519 verification (`verify_strict`) of a 64-byte signature.
pub fn ed25519_verify(public: &[u8; 32], msg: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(signature) else { return false };
    ed25519_dalek::VerifyingKey::from_bytes(public)
        .is_ok_and(|vk| vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
}

/// HKDF-SHA256 with `len` bytes of output.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out).map_err(|e| format!("HKDF: {e}"))?;
    Ok(out)
}

/// HMAC-SHA256.
pub fn hmac(key: &[u8], data: &[u8]) -> Result<[u8; 32], String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|e| format!("HMAC: {e}"))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// AES-256-GCM encryption (ciphertext || 16-byte tag).
pub fn aes_gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Result<Vec<u8>, String> {
    Aes256Gcm::new(&(*key).into())
        .encrypt(&(*nonce).into(), Payload { msg: pt, aad })
        .map_err(|_| "AES-GCM encryption failed".to_owned())
}

/// AES-256-GCM decryption.
pub fn aes_gcm_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, String> {
    Aes256Gcm::new(&(*key).into())
        .decrypt(&(*nonce).into(), Payload { msg: ct, aad })
        .map_err(|_| "AES-GCM authentication failed".to_owned())
}

/// AES-256-GCM-SIV (RFC 8452) encryption (ciphertext || 16-byte tag).
pub fn aes_gcm_siv_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Result<Vec<u8>, String> {
    Aes256GcmSiv::new(&(*key).into())
        .encrypt(&(*nonce).into(), aes_gcm_siv::aead::Payload { msg: pt, aad })
        .map_err(|_| "AES-GCM-SIV encryption failed".to_owned())
}

/// AES-256-GCM-SIV decryption; `None` when the tag does not verify.
pub fn aes_gcm_siv_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    Aes256GcmSiv::new(&(*key).into()).decrypt(&(*nonce).into(), aes_gcm_siv::aead::Payload { msg: ct, aad }).ok()
}

fn decapsulation_key(seed: &[u8; 64]) -> DecapsulationKey {
    DecapsulationKey::from_seed(Seed::from(*seed))
}

/// The ML-KEM-1024 encapsulation key of a 64-byte seed `d || z` (FIPS 203).
pub fn mlkem_public(seed: &[u8; 64]) -> Vec<u8> {
    decapsulation_key(seed).encapsulation_key().to_bytes().as_slice().to_vec()
}

/// ML-KEM-1024 encapsulation with the 32-byte message `m` (FIPS 203 ML-KEM.Encaps_internal).
pub fn mlkem_encapsulate(seed: &[u8; 64], m: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
    let dk = decapsulation_key(seed);
    let (ct, ss) = dk.encapsulation_key().encapsulate_deterministic(&(*m).into());
    let mut secret = [0u8; 32];
    secret.copy_from_slice(ss.as_slice());
    (ct.as_slice().to_vec(), secret)
}

/// ML-KEM-1024 decapsulation.
pub fn mlkem_decapsulate(seed: &[u8; 64], ct: &[u8]) -> Result<[u8; 32], String> {
    let ct = Ciphertext::try_from(ct).map_err(|_| "bad KEM ciphertext length".to_owned())?;
    let ss = decapsulation_key(seed).decapsulate(&ct);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(ss.as_slice());
    Ok(secret)
}

/// ISO/IEC 7816-4 padding to a multiple of `block` bytes (always at least one byte).
pub fn pad(pt: &[u8], block: usize) -> Vec<u8> {
    let len = (pt.len() / block + 1) * block;
    let mut out = pt.to_vec();
    out.push(0x80);
    out.resize(len, 0);
    out
}
