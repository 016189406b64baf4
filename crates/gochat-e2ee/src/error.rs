//! The top-level error, wrapping each layer's error, with a flat, stable code.

use thiserror::Error as ThisError;

use crate::account::AccountError;
use crate::attachment::AttachmentError;
use crate::channel::ChannelError;
use crate::group::chain::ChainError;
use crate::group::GroupError;
use crate::handshake::HandshakeError;
use crate::keys::KeyError;
use crate::ratchet::RatchetError;
use crate::retry::RetryError;
use crate::session::ParseError;
use crate::snapshot::SnapshotError;
use crate::trust::address::AddressError;
use crate::trust::certificate::CertificateError;
use crate::trust::provisioning::ProvisioningError;
use crate::trust::DeviceListError;
use crate::wire::DecodeError;

/// Any error returned by the [`Device`](crate::Device) API.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
pub enum Error {
    /// An input does not follow its documented layout (or exceeds its size bound).
    #[error("malformed input: {0}")]
    Malformed(#[from] DecodeError),
    /// A key, prekey or bundle was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A session start was refused.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A message could not be decrypted (or encrypted) on a session.
    #[error(transparent)]
    Ratchet(#[from] RatchetError),
    /// There is no session with this peer.
    #[error("no session with this peer")]
    NoSession,
    /// A prekey operation was refused.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A snapshot could not be imported.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A retry request was refused.
    #[error(transparent)]
    Retry(#[from] RetryError),
    /// The peer's current session is not with its pinned identity, or a changed identity
    /// awaits the app's approval (`approve_identity`): nothing is sent to it, and a
    /// session start with an unapproved identity is refused.
    #[error("the peer's identity changed and is not approved")]
    IdentityChanged,
    /// A new peer would exceed `MAX_PEERS`.
    #[error("too many peers")]
    TooManyPeers,
    /// The state would grow past `MAX_STATE_BYTES` (its snapshot would be refused by
    /// import): the input was not processed and nothing changed.
    #[error("device state is at its size budget")]
    StateFull,
    /// A primitive refused an internal length (a bug, never caused by input).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// A group operation was refused.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A channel operation was refused.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// An attachment could not be encrypted or decrypted.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// A device list, an endorsement or a multi-device operation was refused.
    #[error(transparent)]
    DeviceList(#[from] DeviceListError),
    /// Linking a device was refused (offer, provisioning message or link payload).
    #[error(transparent)]
    Provisioning(#[from] ProvisioningError),
    /// A certificate, chain or revocation list was refused, or a certified operation
    /// was refused (`CertificateRequired`, `CertificateMismatch`).
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// A user id, device id or device address is not canonical.
    #[error(transparent)]
    Address(#[from] AddressError),
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Decode(d) => Error::Malformed(d),
            ParseError::Key(k) => Error::Key(k),
        }
    }
}

/// Calls `$m!` with every error code, each preceded by its doc comment, in the stable
/// order. The single list from which [`ErrorCode`] and the bindings' error enums are made,
/// so no binding can drift from the core.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_error_code {
    ($m:ident) => {
        $m! {
            /// Input does not follow its layout.
            Malformed,
            /// Input is larger than its documented maximum.
            TooLarge,
            /// The type byte names another kind of object.
            WrongMessageType,
            /// The version byte is not supported.
            UnsupportedVersion,
            /// A signature does not verify.
            BadSignature,
            /// A key is of low order or weak.
            WeakKey,
            /// A key is not a valid encoding.
            InvalidKey,
            /// An X25519 output was all zeros.
            NonContributory,
            /// The signed prekey named by a message is unknown (or expired).
            UnknownSignedPreKey,
            /// The one-time prekey named by a message is unknown.
            UnknownOneTimePreKey,
            /// The one-time prekey was already used by another session.
            OneTimePreKeyReused,
            /// The ML-KEM prekey named by a message is unknown.
            UnknownPqPreKey,
            /// The one-time ML-KEM prekey was already used.
            PqPreKeyReused,
            /// A last-resort prekey combination was replayed.
            LastResortReplay,
            /// A session with one's own identity.
            SelfSession,
            /// The message was already received.
            Duplicate,
            /// The message is too far ahead of its chain.
            TooFarAhead,
            /// The message failed authentication (tampered, or not for this session).
            AuthenticationFailed,
            /// Decrypted padding is invalid.
            InvalidPadding,
            /// The plaintext is too large.
            PlaintextTooLarge,
            /// The sending chain is exhausted (or, for a restricted channel, its content
            /// key was retired by a restore): rotate the key, then send.
            ChainExhausted,
            /// The session cannot send yet.
            NotReadyToSend,
            /// There is no session with the peer.
            NoSession,
            /// A prekey store is full.
            PreKeyStoreFull,
            /// Prekey ids are exhausted.
            IdsExhausted,
            /// A snapshot is truncated.
            SnapshotTruncated,
            /// Wrong snapshot key, or the snapshot was modified.
            SnapshotUndecryptable,
            /// The snapshot holds another kind of object.
            SnapshotWrongKind,
            /// A snapshot key has the wrong length.
            InvalidSnapshotKey,
            /// A retry request is addressed to another identity.
            WrongRecipient,
            /// A retry request comes from an identity we have no session with.
            UntrustedIdentity,
            /// A retry request names no recent message.
            UnknownMessage,
            /// The peer's identity changed and the app has not approved it.
            IdentityChanged,
            /// The message's key was discarded under the state bounds before it arrived:
            /// it can never be decrypted ("a message could not be decrypted").
            MessageLost,
            /// The sender restored older state and re-used a message counter.
            CounterReused,
            /// A retry request is stale or dated in the future.
            RetryExpired,
            /// A new peer would exceed the peer limit.
            TooManyPeers,
            /// The device state would exceed its size budget (`MAX_STATE_BYTES`), so a
            /// snapshot of it could no longer be imported: the input was not processed.
            StateFull,
            /// A primitive refused an internal length: a bug in this library, never
            /// caused by peer input. Nothing was changed.
            Internal,
            /// No group (or channel) with this id is held.
            UnknownGroup,
            /// The device is not a member of the group (sender, author, or this device).
            NotMember,
            /// The membership change needs an admin.
            NotAdmin,
            /// No sender key with this id is held for the sender (or no content key for
            /// a restricted channel): retry after its distribution arrives.
            MissingSenderKey,
            /// The input is from a group epoch not yet reached: apply the missing
            /// commits, then retry.
            EpochAhead,
            /// The input is from a group epoch before a removal.
            StaleEpoch,
            /// The server shows members different group histories (a fork).
            GroupFork,
            /// A membership change breaks the group rules.
            InvalidMembership,
            /// The sender's pairwise identity differs from the member list.
            IdentityMismatch,
            /// The device holds the most groups (or channels) allowed.
            TooManyGroups,
            /// An announcement is signed by another key than the channel's current one.
            WrongSigner,
            /// An announcement's sequence number was already seen or is too old
            /// (a replay or a rollback).
            StaleSequence,
            /// An announcement is dated too far in the future.
            FromFuture,
            /// An announcement or key belongs to another channel, or has the wrong kind.
            WrongChannel,
            /// The attachment key does not open this blob (key commitment).
            WrongKey,
            /// An attachment segment (or the header) is not authentic.
            Tampered,
            /// An attachment blob ended before its last segment.
            Truncated,
            /// Bytes after the end of an attachment blob.
            TrailingData,
            /// The attachment blob is not the one its pointer names (SHA-256).
            DigestMismatch,
            /// Attachment data of another size than declared.
            SizeMismatch,
            /// An attachment stream used after it finished.
            StreamFinished,
            /// A device list older than the one held, or another list at the same
            /// version (a replay or a rollback).
            StaleDeviceList,
            /// This device holds no master key: only the primary device may do this.
            NotPrimary,
            /// The device is not in the user's device list.
            UnknownDevice,
            /// A device list would be empty or hold more than `MAX_DEVICES_PER_USER`.
            TooManyDevices,
            /// A device list, an endorsement and this device do not agree (user, device
            /// id, identity or master key).
            DeviceListMismatch,
            /// No device list signed by this master key is pending approval.
            UnknownMasterKey,
            /// A provisioning offer (device-link QR code) is stale or dated in the
            /// future: show a new one.
            ProvisioningExpired,
            /// A provisioning secret already linked its device: an offer links once.
            ProvisioningUsed,
            /// A certificate of the chain is past its `not_after`.
            CertificateExpired,
            /// A certificate of the chain is before its `not_before`.
            CertificateNotYetValid,
            /// The user's email domain is not one of the agency's domains.
            WrongDomain,
            /// A certificate of the chain is on its issuer's revocation list.
            CertificateRevoked,
            /// The chain (or a revocation list) is not issued under a trust root.
            UnknownRoot,
            /// A revocation list is older than, or conflicts with, the one held.
            StaleRevocationList,
            /// A verified device certificate is required (policy set by the app) and
            /// none was given: nothing was processed.
            CertificateRequired,
            /// The verified certificate names another peer or identity.
            CertificateMismatch,
            /// Too many trust roots, or revocation lists from too many issuers.
            TrustAnchorsFull,
            /// Too many wrong passcodes were tried on this store: the app decides (wipe, or unlock with the platform key); passcode attempts are refused until then.
            AttemptLimitReached,
            /// The store was exported to move the device (or replaced): it refuses every operation, so two copies of live ratchet state never both run.
            StoreRetired,
            /// Another handle (thread or process) held the store's write lock past the wait timeout; nothing changed: try again.
            StoreBusy,
            /// A stored record or the keyslot does not open or decode under this store's key: the file was modified or damaged; nothing changed.
            StoreCorrupt,
            /// The store was written by a newer version of the library (a higher schema version).
            UnsupportedSchema,
            /// The database or file system failed (disk full, permissions, I/O error); the operation was not committed and its result was not released.
            StoreIo,
            /// A new store was asked for at a location that already holds one.
            StoreExists,
            /// Too many decrypted results wait for the app's acknowledgement (`ack`): acknowledge handled messages first; nothing was decrypted.
            InboxFull,
            /// Argon2id parameters (or a passcode) outside the documented bounds, or a store
            /// backend driven out of order (a write outside a transaction).
            InvalidStoreParameters,
            /// The operation does not apply to this device: a store method on an in-memory
            /// device, or a snapshot export of a store-backed device (move it with `move_out`).
            NotSupported,
            /// The store is older than the generation the app recorded outside it (a restored backup, a disk or VM snapshot, a copied-back file): nothing was loaded; do not run the device from it.
            StoreRolledBack,
            /// A store-backed device was asked to move (`export` / `move_out`) while decrypted
            /// results wait for `ack`: they do not move with it. Handle and acknowledge them,
            /// then move; nothing was written and the store stays live.
            InboxNotEmpty,
        }
    };
}

macro_rules! define_error_code {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A flat, stable name for every error case, shared by the bindings and the interop
        /// driver (`"error"` field). The names never change meaning once published.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $name,)*
        }

        impl ErrorCode {
            /// The stable name, e.g. `"Duplicate"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                }
            }

            /// Every code, in declaration order.
            pub const ALL: [ErrorCode; [$(ErrorCode::$name),*].len()] = [$(ErrorCode::$name),*];
        }
    };
}

for_each_error_code!(define_error_code);

fn decode_code(e: &DecodeError) -> ErrorCode {
    match e {
        DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
        DecodeError::WrongType { .. } => ErrorCode::WrongMessageType,
        DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        _ => ErrorCode::Malformed,
    }
}

fn key_code(e: &KeyError) -> ErrorCode {
    match e {
        KeyError::Decode(d) => decode_code(d),
        KeyError::InvalidIdentityKey | KeyError::InvalidPqKey | KeyError::InconsistentKeyPair => ErrorCode::InvalidKey,
        KeyError::WeakKey(_) => ErrorCode::WeakKey,
        KeyError::BadSignature(_) => ErrorCode::BadSignature,
    }
}

fn chain_code(e: &ChainError) -> ErrorCode {
    match e {
        ChainError::Duplicate => ErrorCode::Duplicate,
        ChainError::TooFarAhead => ErrorCode::TooFarAhead,
        ChainError::MessageLost => ErrorCode::MessageLost,
        ChainError::Exhausted => ErrorCode::ChainExhausted,
    }
}

fn group_code(e: &GroupError) -> ErrorCode {
    match e {
        GroupError::Decode(d) => decode_code(d),
        GroupError::Key(k) => key_code(k),
        GroupError::UnknownGroup => ErrorCode::UnknownGroup,
        GroupError::GroupExists | GroupError::Duplicate => ErrorCode::Duplicate,
        GroupError::NotMember => ErrorCode::NotMember,
        GroupError::NotAdmin => ErrorCode::NotAdmin,
        GroupError::MissingSenderKey { .. } => ErrorCode::MissingSenderKey,
        GroupError::EpochAhead { .. } => ErrorCode::EpochAhead,
        GroupError::StaleEpoch => ErrorCode::StaleEpoch,
        GroupError::GroupFork { .. } => ErrorCode::GroupFork,
        GroupError::InvalidMembership(_) => ErrorCode::InvalidMembership,
        GroupError::BadSignature => ErrorCode::BadSignature,
        GroupError::IdentityMismatch => ErrorCode::IdentityMismatch,
        GroupError::Chain(c) => chain_code(c),
        GroupError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
        GroupError::InvalidPadding => ErrorCode::InvalidPadding,
        GroupError::PlaintextTooLarge(_) => ErrorCode::PlaintextTooLarge,
        GroupError::TooManyGroups => ErrorCode::TooManyGroups,
        GroupError::Crypto(_) => ErrorCode::Internal,
    }
}

fn attachment_code(e: &AttachmentError) -> ErrorCode {
    match e {
        AttachmentError::Decode(d) => decode_code(d),
        AttachmentError::TooLarge { .. } => ErrorCode::TooLarge,
        AttachmentError::InvalidSegmentSize(_)
        | AttachmentError::InvalidContentType
        | AttachmentError::InvalidFileName
        | AttachmentError::SegmentOutOfRange { .. } => ErrorCode::Malformed,
        AttachmentError::TooMuchInput { .. } | AttachmentError::SizeMismatch { .. } => ErrorCode::SizeMismatch,
        AttachmentError::WrongKey => ErrorCode::WrongKey,
        AttachmentError::Tampered { .. } => ErrorCode::Tampered,
        AttachmentError::InvalidPadding { .. } => ErrorCode::InvalidPadding,
        AttachmentError::Truncated { .. } => ErrorCode::Truncated,
        AttachmentError::TrailingData => ErrorCode::TrailingData,
        AttachmentError::DigestMismatch => ErrorCode::DigestMismatch,
        AttachmentError::Finished => ErrorCode::StreamFinished,
        AttachmentError::Crypto(_) => ErrorCode::Internal,
    }
}

fn device_list_code(e: &DeviceListError) -> ErrorCode {
    match e {
        DeviceListError::Decode(d) => decode_code(d),
        DeviceListError::InvalidMasterKey | DeviceListError::InvalidIdentity => ErrorCode::InvalidKey,
        DeviceListError::BadSignature => ErrorCode::BadSignature,
        DeviceListError::Stale { .. } => ErrorCode::StaleDeviceList,
        DeviceListError::NotPrimary => ErrorCode::NotPrimary,
        DeviceListError::UnknownDevice => ErrorCode::UnknownDevice,
        DeviceListError::TooManyDevices => ErrorCode::TooManyDevices,
        DeviceListError::DuplicateDevice => ErrorCode::Duplicate,
        DeviceListError::Mismatch(_) => ErrorCode::DeviceListMismatch,
        DeviceListError::UnknownMasterKey => ErrorCode::UnknownMasterKey,
        DeviceListError::TooManyUsers => ErrorCode::TooManyPeers,
        DeviceListError::VersionExhausted => ErrorCode::IdsExhausted,
    }
}

fn certificate_code(e: &CertificateError) -> ErrorCode {
    match e {
        CertificateError::Malformed(d) => decode_code(d),
        CertificateError::UnknownRoot | CertificateError::UnknownIssuer => ErrorCode::UnknownRoot,
        CertificateError::BadSignature(_) | CertificateError::BadListSignature => ErrorCode::BadSignature,
        CertificateError::NotYetValid { .. } => ErrorCode::CertificateNotYetValid,
        CertificateError::Expired { .. } => ErrorCode::CertificateExpired,
        CertificateError::WrongDomain => ErrorCode::WrongDomain,
        CertificateError::Revoked { .. } => ErrorCode::CertificateRevoked,
        CertificateError::StaleRevocationList { .. } => ErrorCode::StaleRevocationList,
        CertificateError::TrustAnchorsFull => ErrorCode::TrustAnchorsFull,
        CertificateError::CertificateRequired => ErrorCode::CertificateRequired,
        CertificateError::CertificateMismatch => ErrorCode::CertificateMismatch,
        CertificateError::InvalidKey => ErrorCode::InvalidKey,
        CertificateError::InvalidRequest(_) => ErrorCode::Malformed,
    }
}

fn channel_code(e: &ChannelError) -> ErrorCode {
    match e {
        ChannelError::Decode(d) => decode_code(d),
        ChannelError::BadSignature => ErrorCode::BadSignature,
        ChannelError::WrongSigner => ErrorCode::WrongSigner,
        ChannelError::StaleSequence { .. } => ErrorCode::StaleSequence,
        ChannelError::FromFuture { .. } => ErrorCode::FromFuture,
        ChannelError::WrongChannel | ChannelError::WrongKind => ErrorCode::WrongChannel,
        ChannelError::UnknownKey { .. } => ErrorCode::MissingSenderKey,
        ChannelError::Chain(c) => chain_code(c),
        ChannelError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
        ChannelError::InvalidPadding => ErrorCode::InvalidPadding,
        ChannelError::BodyTooLarge { .. } => ErrorCode::PlaintextTooLarge,
        ChannelError::SequenceExhausted => ErrorCode::ChainExhausted,
        ChannelError::TooManyChannels => ErrorCode::TooManyGroups,
        ChannelError::AlreadyPresent => ErrorCode::Duplicate,
        ChannelError::UnknownChannel => ErrorCode::UnknownGroup,
        ChannelError::ContentKeyRetired => ErrorCode::ChainExhausted,
        ChannelError::Crypto(_) => ErrorCode::Internal,
    }
}

fn provisioning_code(e: &ProvisioningError) -> ErrorCode {
    match e {
        ProvisioningError::Decode(d) => decode_code(d),
        ProvisioningError::Key(k) => key_code(k),
        ProvisioningError::InvalidMasterKey => ErrorCode::InvalidKey,
        ProvisioningError::OfferExpired { .. } | ProvisioningError::OfferFromFuture { .. } => {
            ErrorCode::ProvisioningExpired
        }
        ProvisioningError::NonContributory => ErrorCode::NonContributory,
        ProvisioningError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
        ProvisioningError::Used => ErrorCode::ProvisioningUsed,
        ProvisioningError::IdentityMismatch(_) => ErrorCode::DeviceListMismatch,
        ProvisioningError::Crypto(_) => ErrorCode::Internal,
    }
}

impl Error {
    /// The flat code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Malformed(d) => decode_code(d),
            Error::Key(k) => key_code(k),
            Error::Handshake(h) => match h {
                HandshakeError::InvalidBundle(k) => key_code(k),
                HandshakeError::NonContributory => ErrorCode::NonContributory,
                HandshakeError::UnknownSignedPreKey(_) => ErrorCode::UnknownSignedPreKey,
                HandshakeError::UnknownOneTimePreKey(_) => ErrorCode::UnknownOneTimePreKey,
                HandshakeError::OneTimePreKeyReused(_) => ErrorCode::OneTimePreKeyReused,
                HandshakeError::UnknownPqPreKey(_) | HandshakeError::LastResortExhausted(_) => {
                    ErrorCode::UnknownPqPreKey
                }
                HandshakeError::PqPreKeyReused(_) => ErrorCode::PqPreKeyReused,
                HandshakeError::LastResortReplay => ErrorCode::LastResortReplay,
                HandshakeError::SelfSession => ErrorCode::SelfSession,
                HandshakeError::Crypto(_) => ErrorCode::Internal,
            },
            Error::Ratchet(r) => match r {
                RatchetError::Duplicate => ErrorCode::Duplicate,
                RatchetError::MessageLost => ErrorCode::MessageLost,
                RatchetError::CounterReused => ErrorCode::CounterReused,
                RatchetError::TooFarAhead { .. } => ErrorCode::TooFarAhead,
                RatchetError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
                RatchetError::NonContributory => ErrorCode::NonContributory,
                RatchetError::InvalidPadding => ErrorCode::InvalidPadding,
                RatchetError::PlaintextTooLarge(_) => ErrorCode::PlaintextTooLarge,
                RatchetError::ChainExhausted => ErrorCode::ChainExhausted,
                RatchetError::NotReadyToSend => ErrorCode::NotReadyToSend,
                RatchetError::Crypto(_) => ErrorCode::Internal,
            },
            Error::NoSession => ErrorCode::NoSession,
            Error::Account(a) => match a {
                AccountError::PreKeyStoreFull { .. } => ErrorCode::PreKeyStoreFull,
                AccountError::IdsExhausted => ErrorCode::IdsExhausted,
            },
            Error::Snapshot(s) => match s {
                SnapshotError::Truncated => ErrorCode::SnapshotTruncated,
                SnapshotError::Malformed(d) => decode_code(d),
                SnapshotError::WrongKind { .. } => ErrorCode::SnapshotWrongKind,
                SnapshotError::Undecryptable | SnapshotError::InvalidState(_) => ErrorCode::SnapshotUndecryptable,
                SnapshotError::InvalidKeyLength(_) => ErrorCode::InvalidSnapshotKey,
                SnapshotError::Crypto(_) => ErrorCode::Internal,
            },
            Error::Retry(r) => match r {
                RetryError::Malformed(k) => key_code(k),
                RetryError::BadSignature => ErrorCode::BadSignature,
                RetryError::WrongRecipient => ErrorCode::WrongRecipient,
                RetryError::UntrustedIdentity => ErrorCode::UntrustedIdentity,
                RetryError::UnknownMessage => ErrorCode::UnknownMessage,
                RetryError::Expired => ErrorCode::RetryExpired,
            },
            Error::IdentityChanged => ErrorCode::IdentityChanged,
            Error::TooManyPeers => ErrorCode::TooManyPeers,
            Error::StateFull => ErrorCode::StateFull,
            Error::Crypto(_) => ErrorCode::Internal,
            Error::Group(g) => group_code(g),
            Error::Channel(c) => channel_code(c),
            Error::Attachment(a) => attachment_code(a),
            Error::DeviceList(d) => device_list_code(d),
            Error::Provisioning(p) => provisioning_code(p),
            Error::Certificate(c) => certificate_code(c),
            Error::Address(_) => ErrorCode::Malformed,
        }
    }

    /// Whether asking the sender to retry (a retry request, which makes it start a new
    /// session and re-send) can help. True when our state may simply be out of step
    /// with the sender's (lost or restored state, prekeys we no longer hold); false for
    /// duplicates, replays and malformed input, where a retry cannot change the outcome.
    pub fn retry_may_help(&self) -> bool {
        matches!(
            self.code(),
            ErrorCode::NoSession
                | ErrorCode::UnknownSignedPreKey
                | ErrorCode::UnknownOneTimePreKey
                | ErrorCode::UnknownPqPreKey
                | ErrorCode::AuthenticationFailed
                | ErrorCode::TooFarAhead
                | ErrorCode::MessageLost
                | ErrorCode::CounterReused
        )
    }
}
