//! Backlogs in one crossing: `decrypt_batch` decrypts many 1:1 messages with one call
//! into the library, so a binding whose per-call cost is high (Python through ctypes,
//! Kotlin through JNA) pays it once per batch, not once per message
//! (`docs/benchmarks.md`, "Kotlin crossing").
//!
//! Each message is processed exactly as `decrypt` processes it, in order; one refused
//! message does not stop the others and changes nothing, as with `decrypt`. On a
//! store-backed device the whole batch is **one** transaction (`StoredDevice::decrypt_batch`:
//! one commit, one fsync, every result kept in the inbox until `ack`), released only after
//! the commit; if the commit fails, the call fails and nothing of the batch was kept.

use crate::holder::Holder;
use crate::{rng, DecryptResult, Device, GoChatError, Result};

/// Most messages one `decrypt_batch` call takes (a larger batch is refused whole with
/// `TooLarge`, nothing decrypted): the store crate's bound, shared by every binding.
pub use gochat_e2ee_store::MAX_BATCH_MESSAGES;

/// One incoming 1:1 message: the sender's name as the server gave it, and the bytes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IncomingMessage {
    /// The peer name the message came from.
    pub peer: String,
    /// The message bytes.
    pub message: Vec<u8>,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum BatchOutcome {
    /// Decrypted, exactly as `decrypt` returns it (check `identity_event`).
    Decrypted {
        /// The result.
        result: DecryptResult,
    },
    /// Refused, exactly as `decrypt` would have thrown: nothing changed for this message.
    Failed {
        /// The error code name (`docs/protocol.md`, section 11).
        code: String,
        /// What exactly was refused.
        detail: String,
        /// Whether asking the sender to retry can help.
        retry_may_help: bool,
    },
}

impl BatchOutcome {
    fn failed(e: GoChatError) -> Self {
        BatchOutcome::Failed { code: e.code().to_owned(), detail: e.to_string(), retry_may_help: e.retry_may_help() }
    }
}

#[uniffi::export]
impl Device {
    /// Decrypts `messages` in order, each as `decrypt` would, in one call: one outcome
    /// per message, in the same order. On a store-backed device the batch is one
    /// transaction (one durable commit for all; results kept until `ack`); if that commit
    /// fails, the call fails and nothing was kept. Refused whole (`TooLarge`, nothing
    /// decrypted) above `MAX_BATCH_MESSAGES`.
    pub fn decrypt_batch(&self, messages: Vec<IncomingMessage>) -> Result<Vec<BatchOutcome>> {
        gochat_e2ee_store::check_batch_len(messages.len())?;
        // A store-backed device decrypts the whole batch in one transaction (one commit).
        let stored = self.with_holder(|h| match h {
            Holder::Memory(_) => Ok(None),
            Holder::Stored(s) => {
                let pairs: Vec<(&str, &[u8])> =
                    messages.iter().map(|m| (m.peer.as_str(), m.message.as_slice())).collect();
                let out = s.decrypt_batch(&pairs, &mut rng())?;
                Ok(Some(
                    out.into_iter()
                        .map(|o| match o {
                            Ok(r) => BatchOutcome::Decrypted {
                                result: DecryptResult::new(r.decrypted, &r.digest, r.redelivered),
                            },
                            Err(e) => BatchOutcome::failed(e.into()),
                        })
                        .collect(),
                ))
            }
        })?;
        if let Some(out) = stored {
            return Ok(out);
        }
        Ok(messages
            .into_iter()
            .map(|m| match self.decrypt(m.peer, m.message) {
                Ok(result) => BatchOutcome::Decrypted { result },
                Err(e) => BatchOutcome::failed(e),
            })
            .collect())
    }
}
