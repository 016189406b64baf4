//! Safety numbers (`docs/protocol.md` 15.1–15.2): the stateless `SafetyNumber` class.

use gochat_e2ee as core;
use gochat_e2ee::trust::safety_number as sn;
use wasm_bindgen::prelude::*;

use crate::{bytes, js_error, JsResult, Obj};

fn decode_err(e: core::wire::DecodeError) -> JsValue {
    js_error(core::Error::Malformed(e))
}

/// The safety number of a conversation between a local and a remote user: the same 60
/// digits on both sides, and each side's scannable payload (show it as a QR code).
#[wasm_bindgen]
pub struct SafetyNumber {
    inner: sn::SafetyNumber,
}

#[wasm_bindgen]
impl SafetyNumber {
    /// Computes the safety number for `localId` (the user's official email) holding
    /// `localIdentity` (an identity key encoding, e.g. `device.identityKey`) and the
    /// remote user likewise. `Malformed`: an empty or longer than 256-byte user id or
    /// identity, the same user on both sides.
    #[wasm_bindgen(constructor)]
    pub fn new(
        local_id: &str,
        local_identity: &[u8],
        remote_id: &str,
        remote_identity: &[u8],
    ) -> JsResult<SafetyNumber> {
        let inner = sn::SafetyNumber::new(local_id, local_identity, remote_id, remote_identity).map_err(decode_err)?;
        Ok(SafetyNumber { inner })
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
    pub fn scannable(&self) -> JsValue {
        bytes(&self.inner.scannable())
    }

    /// Compares a payload scanned from the other user's screen, in constant time:
    /// `{result: 'match' | 'mismatch' | 'versionMismatch', theirs?: number}` (`theirs`,
    /// the scanned version, only with `'versionMismatch'`: update, then compare again).
    /// Throws `Malformed` (empty, short, long) or `WrongMessageType`.
    #[wasm_bindgen(js_name = compareScanned)]
    pub fn compare_scanned(&self, scanned: &[u8]) -> JsResult<JsValue> {
        Ok(match self.inner.compare_scanned(scanned).map_err(decode_err)? {
            sn::ScanResult::Match => Obj::new().set("result", "match").done(),
            sn::ScanResult::Mismatch => Obj::new().set("result", "mismatch").done(),
            sn::ScanResult::VersionMismatch { theirs } => {
                Obj::new().set("result", "versionMismatch").set("theirs", f64::from(theirs)).done()
            }
        })
    }
}
