//! Safety numbers (protocol 15.1–15.2): the stateless `SafetyNumber` object. Thin like the
//! rest: convert, call the core's `trust::safety_number`, map errors (`Malformed` for a
//! bad user id, identity or scanned payload; `WrongMessageType` for a payload of another
//! type).

use std::sync::Arc;

use gochat_e2ee as core;
use gochat_e2ee::trust::safety_number as sn;

use crate::{GoChatError, Result};

fn decode_err(e: core::wire::DecodeError) -> GoChatError {
    core::Error::Malformed(e).into()
}

/// What comparing a scanned safety-number payload with one's own found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ScanResult {
    /// Both identities are the ones this safety number was computed for.
    Match,
    /// Another identity on one side or both: do not trust the conversation.
    Mismatch,
    /// The other app uses another safety-number version: update, then compare again.
    VersionMismatch {
        /// The scanned payload's version.
        theirs: u8,
    },
}

impl From<sn::ScanResult> for ScanResult {
    fn from(r: sn::ScanResult) -> Self {
        match r {
            sn::ScanResult::Match => ScanResult::Match,
            sn::ScanResult::Mismatch => ScanResult::Mismatch,
            sn::ScanResult::VersionMismatch { theirs } => ScanResult::VersionMismatch { theirs },
        }
    }
}

/// The safety number of a conversation between a local and a remote user: the same 60
/// digits on both sides, and each side's scannable payload (show it as a QR code).
#[derive(Debug, uniffi::Object)]
pub struct SafetyNumber {
    inner: sn::SafetyNumber,
}

#[uniffi::export]
impl SafetyNumber {
    /// Computes the safety number for `local_id` (the user's official email) holding
    /// `local_identity` (an identity key encoding, e.g. `Device.identityKey()`) and the
    /// remote user likewise. Refused (`Malformed`): an empty or longer than 256-byte user
    /// id or identity, the same user on both sides.
    #[uniffi::constructor]
    pub fn new(
        local_id: String,
        local_identity: Vec<u8>,
        remote_id: String,
        remote_identity: Vec<u8>,
    ) -> Result<Arc<Self>> {
        let inner =
            sn::SafetyNumber::new(&local_id, &local_identity, &remote_id, &remote_identity).map_err(decode_err)?;
        Ok(Arc::new(SafetyNumber { inner }))
    }

    /// The 60 digits, without spaces.
    pub fn digits(&self) -> String {
        self.inner.digits().to_owned()
    }

    /// The 60 digits in twelve groups of five, separated by spaces.
    pub fn grouped(&self) -> String {
        self.inner.grouped()
    }

    /// This side's scannable payload (66 bytes): show it as a QR code.
    pub fn scannable(&self) -> Vec<u8> {
        self.inner.scannable().to_vec()
    }

    /// Compares a payload scanned from the other user's screen, in constant time.
    /// `VersionMismatch` is not a mismatch: nothing can be concluded. Refused: an empty,
    /// short or long payload (`Malformed`), another type (`WrongMessageType`).
    pub fn compare_scanned(&self, scanned: Vec<u8>) -> Result<ScanResult> {
        Ok(self.inner.compare_scanned(&scanned).map_err(decode_err)?.into())
    }
}
