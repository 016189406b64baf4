//! Backlogs in one crossing: `decrypt_batch` decrypts many 1:1 messages with one call
//! into the library, so a binding whose per-call cost is high (Python through ctypes,
//! Kotlin through JNA) pays it once per batch, not once per message
//! (`docs/benchmarks.md`, "Kotlin crossing").
//!
//! Each message is processed exactly as `decrypt` processes it (on a store-backed device,
//! each is its own transaction with its inbox entry), in order; one refused message does
//! not stop the others and changes nothing, as with `decrypt`.

use gochat_e2ee::ErrorCode;

use crate::{DecryptResult, Device, GoChatError, Result};

/// Most messages one `decrypt_batch` call takes (a larger batch is refused whole with
/// `TooLarge`, nothing decrypted): it bounds the work and the result one call can make.
pub const MAX_BATCH_MESSAGES: u32 = 1_000;

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
    /// per message, in the same order. Refused whole (`TooLarge`, nothing decrypted)
    /// above `MAX_BATCH_MESSAGES`.
    pub fn decrypt_batch(&self, messages: Vec<IncomingMessage>) -> Result<Vec<BatchOutcome>> {
        if messages.len() > MAX_BATCH_MESSAGES as usize {
            return Err(GoChatError::from_code(
                ErrorCode::TooLarge,
                format!("{} messages in one batch (at most {MAX_BATCH_MESSAGES})", messages.len()),
                false,
            ));
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
