// Hand-written types for @gochat/e2ee (checked against the wasm-bindgen output in
// pkg/gochat_e2ee_wasm.d.ts by test/types.test.mjs). Times are seconds since the Unix
// epoch; every binary value is a Uint8Array.

/** Every error code the library throws (docs/protocol.md, section 11). */
export type ErrorCode =
  | 'Malformed' | 'TooLarge' | 'WrongMessageType' | 'UnsupportedVersion'
  | 'BadSignature' | 'WeakKey' | 'InvalidKey' | 'NonContributory'
  | 'UnknownSignedPreKey' | 'UnknownOneTimePreKey' | 'OneTimePreKeyReused'
  | 'UnknownPqPreKey' | 'PqPreKeyReused' | 'LastResortReplay' | 'SelfSession'
  | 'Duplicate' | 'TooFarAhead' | 'AuthenticationFailed' | 'InvalidPadding'
  | 'PlaintextTooLarge' | 'ChainExhausted' | 'NotReadyToSend' | 'NoSession'
  | 'PreKeyStoreFull' | 'IdsExhausted' | 'SnapshotTruncated' | 'SnapshotUndecryptable'
  | 'SnapshotWrongKind' | 'InvalidSnapshotKey' | 'WrongRecipient' | 'UntrustedIdentity'
  | 'UnknownMessage' | 'IdentityChanged' | 'MessageLost' | 'CounterReused' | 'RetryExpired'
  | 'TooManyPeers' | 'StateFull' | 'Internal'
  | 'UnknownGroup' | 'NotMember' | 'NotAdmin' | 'MissingSenderKey' | 'EpochAhead'
  | 'StaleEpoch' | 'GroupFork' | 'InvalidMembership' | 'IdentityMismatch' | 'TooManyGroups'
  | 'WrongSigner' | 'StaleSequence' | 'FromFuture' | 'WrongChannel'
  | 'WrongKey' | 'Tampered' | 'Truncated' | 'TrailingData' | 'DigestMismatch'
  | 'SizeMismatch' | 'StreamFinished'
  | 'StaleDeviceList' | 'NotPrimary' | 'UnknownDevice' | 'TooManyDevices' | 'DeviceListMismatch' | 'UnknownMasterKey'
  | 'ProvisioningExpired' | 'ProvisioningUsed'
  | 'CertificateExpired' | 'CertificateNotYetValid' | 'WrongDomain' | 'CertificateRevoked' | 'UnknownRoot'
  | 'StaleRevocationList' | 'CertificateRequired' | 'CertificateMismatch' | 'TrustAnchorsFull'
  | 'AttemptLimitReached' | 'StoreRetired' | 'StoreBusy' | 'StoreCorrupt' | 'UnsupportedSchema' | 'StoreIo'
  | 'StoreExists' | 'InboxFull' | 'InvalidStoreParameters' | 'NotSupported'
  | 'StoreRolledBack' | 'InboxNotEmpty';

/** An error thrown by the library. Nothing was changed by the failed call. */
export declare class GoChatError extends Error {
  readonly name: 'GoChatError';
  /** The stable error code, e.g. `"Duplicate"` (already received) or `"AuthenticationFailed"` (tampered). */
  readonly code: ErrorCode;
  /** Whether asking the sender to retry (a retry request) can help. */
  readonly retryMayHelp: boolean;
}

/** True when `e` was thrown by this library. */
export declare function isGoChatError(e: unknown): e is GoChatError;

/** What a verified bundle contains. */
export interface BundleInfo {
  identityKey: Uint8Array;
  fingerprint: string;
  signedPreKeyId: number;
  oneTimePreKeyId: number | null;
  pqPreKeyId: number;
  pqPreKeyIsLastResort: boolean;
}

/**
 * How a peer's identity relates to the one pinned for it. `changed` must be shown to the
 * user; with `approved: false` (policy `requireApproval`) sending to the peer throws
 * `IdentityChanged` until `approveIdentity(peer, newKey)`.
 */
export type IdentityEvent =
  | { kind: 'new' }
  | { kind: 'same' }
  | {
      kind: 'changed';
      previous: Uint8Array;
      approved: boolean;
      /** Why the change was, or was not, accepted. */
      reason: 'notify' | 'certified' | 'awaitingApproval' | 'uncertified';
    };

/** What a device does when a peer shows a changed identity (default `requireApproval`). */
export type IdentityPolicy = 'requireApproval' | 'notify' | 'certified';

/** A decrypted message, its sender's identity key (66 bytes) and the identity event. */
/** One message's outcome in `decryptBatch`. */
export type BatchOutcome = { ok: true; result: DecryptResult } | { ok: false; error: GoChatError };

export interface DecryptResult {
  plaintext: Uint8Array;
  senderIdentity: Uint8Array;
  identityEvent: IdentityEvent;
  /** The message digest (32 bytes): on a stored device, pass it to `ack` once the message is handled durably; deduplicate by it. */
  digest: Uint8Array;
  /** True if a stored device decrypted this message before and it was not yet acknowledged (always false in memory and for `decryptCertified`). */
  redelivered: boolean;
}

/** The limits the library enforces (docs/protocol.md, sections 10 and 14.6). */
export interface Limits {
  maxForwardJump: number;
  maxSkippedKeys: number;
  maxReceiverChains: number;
  maxArchivedSessions: number;
  maxMessageBytes: number;
  maxPlaintextBytes: number;
  maxBundleBytes: number;
  paddingBlock: number;
  /** Length of an attachment blob's header (53). */
  headerBytes: number;
  /** The segment size `new AttachmentEncryptor` uses (65,536). */
  defaultSegmentSize: number;
  /** Smallest segment size (1,024). */
  minSegmentSize: number;
  /** Largest segment size (1,048,576): a decryptor buffers at most one segment. */
  maxSegmentSize: number;
  /** Largest attachment plaintext (2^40 bytes, 1 TiB). */
  maxAttachmentBytes: number;
  /** Longest encoded attachment pointer (587). */
  maxPointerBytes: number;
}

// ---- Groups (Sender Keys; docs/protocol.md, chapter 12) -----------------------------

/** A member device of a group: its name (the peer name used for its pairwise session) and identity key. */
export interface GroupMember {
  name: string;
  /** The member's encoded identity key (66 bytes). */
  identityKey: Uint8Array;
  /** Whether it may add, remove and replace members (default false). */
  admin?: boolean;
}

/** A member as the group's list holds it. */
export interface GroupMemberInfo {
  name: string;
  identityKey: Uint8Array;
  admin: boolean;
}

/** A pairwise control message to deliver to `peer` (it passes it to `receiveControl` or `groupReceive`). */
export interface Outgoing {
  peer: string;
  message: Uint8Array;
}

/**
 * Why a member (or subscriber) was not sent a key. Nothing is ever sent to an identity
 * the app has not approved: `noSession` (start one with `initiate`, then resend),
 * `identityNotApproved` (check and `approveIdentity`, then resend), `identityMismatch`
 * (the session is with another identity than the member list holds; nothing is sent).
 */
export type WithheldReason = 'noSession' | 'identityNotApproved' | 'identityMismatch';

export interface Withheld {
  peer: string;
  reason: WithheldReason;
}

/** Pairwise messages to deliver and the peers skipped. */
export interface FanOut {
  outgoing: Outgoing[];
  withheld: Withheld[];
}

/** Who joined, left or changed device in a membership change. */
export interface MembershipChange {
  added: string[];
  removed: string[];
  replaced: string[];
}

/**
 * The result of a membership operation: what to publish and what to send. Deliver
 * `commit` to every member of the previous epoch (removed ones too), `welcome` to every
 * added (or replacing) device, and each `outgoing` message pairwise.
 */
export interface GroupChange extends FanOut {
  /** The group's 32-byte id. */
  groupId: Uint8Array;
  /** The epoch after the change (0 at creation). */
  epoch: number;
  /** The signed commit (null on creation, join and when processing another's commit). */
  commit: Uint8Array | null;
  /** The signed welcome for added devices (on creation: for every other member). */
  welcome: Uint8Array | null;
  change: MembershipChange;
}

/** An encrypted group message. When `rotated`, deliver `outgoing` (the new sender key) before `message`. */
export interface GroupSent extends FanOut {
  /** The group message (type 0x24), the same bytes for every member. */
  message: Uint8Array;
  /** Whether this send started a new sender key generation. */
  rotated: boolean;
}

/** A decrypted group message. */
export interface GroupPlaintext {
  plaintext: Uint8Array;
  /** The sender's member name. */
  sender: string;
  /** The sender's identity key from the member list (66 bytes). */
  senderIdentity: Uint8Array;
  /** The sender key generation. */
  keyId: number;
  /** The message's position on that generation's chain. */
  iteration: number;
  /** The message digest (32 bytes): on a stored device, `ack` it once handled; deduplicate by it. */
  digest: Uint8Array;
  /** True if a stored device returned this kept result again (it may have been handled already). */
  redelivered: boolean;
}

/** A group member's sender key received pairwise. The identity event must be checked. */
export interface SenderKeyReceived {
  kind: 'senderKey';
  groupId: Uint8Array;
  /** The member that sent it. */
  sender: string;
  keyId: number;
  /** False if this generation was already held (a repeat changes nothing). */
  fresh: boolean;
  /** How the pairwise sender's identity relates to its pin. */
  identityEvent: IdentityEvent;
}

/** When a device rotates its own sender key (0: never by that measure; removals always rotate). */
export interface RotationPolicy {
  /** Messages per generation (a whole number, at most 2^32 - 1). */
  maxMessages: number;
  /** Seconds per generation (a whole number). */
  maxAgeSecs: number;
}

/** What a device holds for a group. */
export interface GroupInfo {
  groupId: Uint8Array;
  epoch: number;
  /** The hash of the member list at this epoch (equal on every member in step). */
  membershipHash: Uint8Array;
  members: GroupMemberInfo[];
  /** False once this device was removed or replaced: it sends and reads nothing. */
  active: boolean;
  /** This device's current sender key generation, if any. */
  ownKeyId: number | null;
  rotationPolicy: RotationPolicy;
}

// ---- Channels (official broadcast channels; docs/protocol.md, chapter 13) ------------

/** `public`: posts are signed (0x30); `restricted`: signed, then encrypted under a content key sent pairwise (0x32). */
export type ChannelKind = 'public' | 'restricted';

/** What an announcement's body holds (not parsed by the library). */
export type ContentType = 'text' | 'json' | 'attachmentPointer';

/** A decoded, signature-checked announcement. */
export interface Announcement {
  /** The channel's 32-byte id. */
  channelId: Uint8Array;
  /** Its sequence number in the channel (shared with key rotations). */
  seq: number;
  /** The publisher's clock when posting (seconds; only bounded above on receipt). */
  timestamp: number;
  contentType: ContentType;
  body: Uint8Array;
  /** The 32-byte Ed25519 channel key that signed it. */
  signer: Uint8Array;
}

/** What `channelReceive` accepted: an announcement, or a signing-key rotation (posts are accepted only from `new` afterwards). */
export type ChannelReceived = (
  | { kind: 'announcement'; announcement: Announcement }
  | { kind: 'keyRotated'; old: Uint8Array; new: Uint8Array; seq: number }
) & {
  /** The post digest (32 bytes): on a stored device, `ack` it once handled. */
  digest: Uint8Array;
  /** True if a stored device returned this kept result again. */
  redelivered: boolean;
};

/** A restricted channel's new content key and its pairwise messages (subscribers left out read nothing posted afterwards). */
export interface ChannelRekey extends FanOut {
  keyId: number;
}

/** A restricted channel's content key received pairwise (signed by the trusted channel key, whoever relayed it). */
export interface ChannelKeyReceived {
  kind: 'channelKey';
  channelId: Uint8Array;
  /** The peer whose pairwise session carried it. */
  sender: string;
  keyId: number;
  /** How the relaying peer's identity relates to its pin. */
  identityEvent: IdentityEvent;
}

/** What `receiveControl` accepted. */
export type ControlReceived = SenderKeyReceived | ChannelKeyReceived;

/**
 * A device: its identity, prekeys and one session per peer device (named by the app).
 * Every method either succeeds or throws a GoChatError and leaves the device unchanged.
 * Call `free()` (or use `using`) to release the wasm memory and wipe the secrets.
 */
export declare class Device {
  /** A new device with a fresh identity, signed prekey and last-resort ML-KEM prekey. */
  constructor(userId: string, now: number);
  /** Restores a device from a snapshot made by `export` with the same 32-byte key. */
  static import(key: Uint8Array, snapshot: Uint8Array): Device;
  /** Low level (use `createStoredDevice`): a new device kept in the store behind `journal`, inside `IndexedDbStore.transact`. */
  static createStored(journal: StoreJournal, unlock: StoreUnlock, userId: string, now: number): Device;
  /** Low level (use `openStoredDevice`). */
  static openStored(journal: StoreJournal, unlock: StoreUnlock, minGeneration?: number | null): Device;
  /** Low level (use `importStoredDevice`). */
  static importStored(journal: StoreJournal, unlock: StoreUnlock, container: Uint8Array, transferPasscode: string): Device;
  /** Whether this device is kept in a store (`StoredDevice`); false for `new Device`. */
  readonly isStored: boolean;
  /** Deletes the kept result of the message with `digest` (from `decrypt`) once handled durably; whether one was kept. Always false in memory. */
  ack(digest: Uint8Array): boolean;
  /** Deletes the kept results of many messages in one transaction (as `decryptBatch` decrypts a backlog in one); how many were kept. Always 0 in memory. */
  ackBatch(digests: Uint8Array[]): number;
  /** Re-wraps the store's data key under `next` (after unlocking with `old`, counted if wrong). `NotSupported` in memory. */
  changePasscode(old: StoreUnlock, next: StoreUnlock): void;
  /** How many wrong passcodes the store tolerates before `AttemptLimitReached` (at least 1). `NotSupported` in memory. */
  setAttemptLimit(limit: number): void;
  /**
   * Moves the device to a new installation: the whole device encrypted under `transferPasscode`
   * (for `importStoredDevice`), the store retired in the same transaction (`StoreRetired` after).
   * `NotSupported` in memory (use `export`).
   */
  moveOut(transferPasscode: string, cost?: PasscodeCost): Uint8Array;
  /** Applies what other tabs committed, now (every stored call does this first). No-op in memory. */
  syncStore(): void;
  /**
   * The store generation this device reflects (one more with every committed operation, never
   * less): record it outside the store (server, another origin's storage) as a rollback
   * anchor and pass it as `minGeneration` to `openStoredDevice`. `undefined` in memory.
   */
  readonly storeGeneration: number | undefined;
  /** Low level: the store's rows were reloaded after a failed write (`storedGeneration`: the generation of the last stored transaction); reload every record before the next call. */
  storeReloaded(storedGeneration: number): void;
  readonly userId: string;
  /** The encoded identity key (66 bytes). */
  readonly identityKey: Uint8Array;
  /** The identity fingerprint, 64 hex digits. */
  readonly fingerprint: string;
  /** Generates `count` one-time X25519 prekeys (at most 200 held). */
  generateOneTimePreKeys(count: number): void;
  /** Generates `count` one-time ML-KEM-1024 prekeys (at most 200 held). */
  generatePqPreKeys(count: number, now: number): void;
  /** Rotates the signed prekey; the old one stays usable for 30 days. */
  rotateSignedPreKey(now: number): void;
  /** Rotates the last-resort ML-KEM prekey; the old one stays usable for 30 days. */
  rotateLastResortPreKey(now: number): void;
  /** Drops retired prekeys past their grace period. */
  expirePreKeys(now: number): void;
  /** A fresh bundle to publish: the next unissued one-time prekeys, else last-resort. */
  nextBundle(): Uint8Array;
  /**
   * Starts an outbound session with `peer` from its bundle (verified first) and returns the
   * identity event. Throws `IdentityChanged` for an unapproved changed identity.
   */
  initiate(peer: string, bundle: Uint8Array): IdentityEvent;
  /** Sets the identity-change policy (default `"requireApproval"`). */
  setIdentityPolicy(policy: IdentityPolicy): void;
  /** The identity-change policy in force. */
  readonly identityPolicy: IdentityPolicy;
  /** The app's trust decision: pins `identityKey` for `peer` and makes its newest session current. */
  approveIdentity(peer: string, identityKey: Uint8Array): void;
  /** The identity pinned for `peer`, if any. */
  pinnedIdentity(peer: string): Uint8Array | undefined;
  /**
   * Deletes every session with `peer` (the pinned identity stays); whether there was one.
   * The way to shed state when calls throw `StateFull`.
   */
  removeSessions(peer: string): boolean;
  /**
   * Forgets the pinned identity of `peer`: the next session is a first contact again
   * (trust on first use). Only for an explicit user decision; whether one was pinned.
   */
  forgetIdentity(peer: string): boolean;
  /** The exact size in bytes of the device state (a snapshot is 51 bytes more). */
  readonly stateLen: number;
  /** The changed identity of `peer` awaiting approval, if any. */
  pendingIdentity(peer: string): Uint8Array | undefined;
  hasSession(peer: string): boolean;
  /** The identity key of `peer` on the current session, if any. */
  peerIdentity(peer: string): Uint8Array | undefined;
  /** Encrypts for `peer` on the current session. */
  encrypt(peer: string, plaintext: Uint8Array): Uint8Array;
  /**
   * Decrypts a message from `peer` (a prekey message starts the session). The identity
   * event must be checked. On a stored device the result waits in the store's inbox (same
   * transaction as the ratchet step) until `ack(digest)`: the same message again returns it
   * with `redelivered: true` instead of `Duplicate`; `InboxFull` once 1000 wait.
   */
  decrypt(peer: string, message: Uint8Array): DecryptResult;
  /**
   * Decrypts a backlog in one call, each message as `decrypt` would, in order: one outcome per
   * message. A refused message (`ok: false`, its `GoChatError`) changes nothing and does not stop
   * the others. Throws `TooLarge` (nothing decrypted) above 1,000 messages.
   */
  decryptBatch(messages: { peer: string; message: Uint8Array }[]): BatchOutcome[];
  /**
   * A signed retry request for a message from `peer` we could not decrypt, addressed to its
   * sender's identity, stamped `now`. Throws `Duplicate` if the message names a used counter.
   */
  retryRequest(peer: string, recipientIdentity: Uint8Array, failedMessage: Uint8Array, now: number): Uint8Array;
  /**
   * Handles a retry request from `peer` at `now`: starts a new session and returns the
   * digest of the message to re-send (throws `RetryExpired` when stale).
   */
  handleRetryRequest(peer: string, request: Uint8Array, now: number): Uint8Array;
  /** The whole device as a snapshot encrypted under a 32-byte key. `NotSupported` on a stored device (it moves with `moveOut`). */
  export(key: Uint8Array): Uint8Array;
  exportSession(peer: string, key: Uint8Array): Uint8Array;
  importSession(peer: string, key: Uint8Array, snapshot: Uint8Array): void;
  // ---- Groups ----
  /**
   * Creates a group of this device (admin, named by its user id) and `others`, at epoch 0.
   * Deliver `welcome` to every other member and `outgoing` (this device's sender key)
   * pairwise; members without an approved session are `withheld`.
   */
  groupCreate(others: GroupMember[], now: number): GroupChange;
  /**
   * Adds member devices (an admin only): a commit for the current members, a welcome for
   * the new ones and this device's key at its current position (they read nothing earlier).
   */
  groupAdd(groupId: Uint8Array, members: GroupMember[], now: number): GroupChange;
  /**
   * Removes member devices (an admin; any member may remove itself to leave). This device
   * rotates its sender key and sends the new one to the remaining members only; every
   * remaining member does the same when it applies the commit. `NotAdmin` otherwise.
   */
  groupRemove(groupId: Uint8Array, names: string[], now: number): GroupChange;
  /** Replaces the device behind member `name` by `identityKey` (an admin): the old one is cut off as by a removal. */
  groupReplace(groupId: Uint8Array, name: string, identityKey: Uint8Array, now: number): GroupChange;
  /**
   * Applies another member's signed commit. Refused: `EpochAhead` (apply the missing ones
   * first), `Duplicate` (a replay), `GroupFork`, `NotAdmin`, `NotMember`, `BadSignature`.
   */
  groupProcessCommit(commit: Uint8Array, now: number): GroupChange;
  /**
   * Joins from a welcome signed by an admin whose identity is pinned and approved here
   * (else `UntrustedIdentity`); `Duplicate` if already a member. Deliver `outgoing`
   * (this device's sender key) to every other member.
   */
  groupJoin(welcome: Uint8Array, now: number): GroupChange;
  /** Encrypts for the group; `NotMember` once removed. When `rotated`, deliver `outgoing` first. */
  groupEncrypt(groupId: Uint8Array, plaintext: Uint8Array, now: number): GroupSent;
  /**
   * Decrypts a group message from member `sender` (the name the server gives). The
   * signature is checked first. `MissingSenderKey`: keep the message and retry after the
   * sender's key arrives; `Duplicate`: already read. A failed call changes nothing.
   */
  groupDecrypt(sender: string, message: Uint8Array): GroupPlaintext;
  /**
   * Receives a group sender key (a pairwise control message) from member `peer`. If the
   * group refuses it (e.g. `UnknownGroup` before the welcome) the pairwise session is
   * unchanged and it can be retried. `receiveControl` accepts this and channel keys.
   */
  groupReceive(peer: string, message: Uint8Array): SenderKeyReceived;
  /** Sends this device's current sender key to member `peer` again (after it got a session or an approval). */
  groupResendKey(groupId: Uint8Array, peer: string): FanOut;
  /** Sets when this device rotates its sender key in the group (`Malformed` for a negative or fractional value). */
  groupSetRotationPolicy(groupId: Uint8Array, policy: RotationPolicy): void;
  /** Deletes all state of the group; whether it was held. */
  groupForget(groupId: Uint8Array): boolean;
  /** The ids of every group held (also those this device was removed from). */
  groupIds(): Uint8Array[];
  /** What this device holds for the group, or `undefined` if it holds none. */
  groupInfo(groupId: Uint8Array): GroupInfo | undefined;

  // ---- Channels ----
  /** Creates a channel this device publishes to; returns its random 32-byte id. */
  channelCreate(kind: ChannelKind): Uint8Array;
  /**
   * The current 32-byte signing key of a channel this device publishes to: give it to
   * subscribers out of band (the agency's directory). `UnknownGroup` for any other channel.
   */
  channelPublicKey(channelId: Uint8Array): Uint8Array;
  /**
   * Posts `body` dated `now` with the next sequence number: a signed 0x30 announcement,
   * or on a restricted channel the same announcement encrypted as a 0x32 post. The server
   * delivers the bytes to every subscriber. `PlaintextTooLarge` for a body over the limit.
   */
  channelAnnounce(channelId: Uint8Array, contentType: ContentType, body: Uint8Array, now: number): Uint8Array;
  /**
   * Replaces the channel's signing key: a 0x31 rotation signed by the old and the new key
   * (post it like an announcement). On a restricted channel the content key is replaced
   * too: call `channelSendKey` after posting the rotation.
   */
  channelRotateSigningKey(channelId: Uint8Array, now: number): Uint8Array;
  /**
   * A restricted channel's current content key, as pairwise control messages to each of
   * `subscribers` (peer names with approved sessions; the others are `withheld`). They
   * read every post from now on, none before. `WrongChannel` on a public channel.
   */
  channelSendKey(channelId: Uint8Array, subscribers: string[]): FanOut;
  /**
   * A new content key sent to `subscribers` only: removing a subscriber is rotating and
   * leaving it out (it reads nothing posted afterwards). `WrongChannel` on a public channel.
   */
  channelRotateContentKey(channelId: Uint8Array, subscribers: string[]): ChannelRekey;
  /**
   * Subscribes to a channel, trusting `channelKey` (32 bytes, from the agency's directory,
   * never from the server) as its signing key. `Duplicate` if already subscribed,
   * `Malformed` for an invalid key.
   */
  channelSubscribe(channelId: Uint8Array, channelKey: Uint8Array, kind: ChannelKind): void;
  /**
   * Receives a post (0x30, 0x31 or 0x32) for a subscribed channel, named by the post. Shown
   * to the user only on success. Refused with nothing changed: `StaleSequence` (a replay
   * or too old), `WrongSigner` (not the trusted key; retry after a rotation arrives),
   * `BadSignature`, `FromFuture`, `MissingSenderKey` (no content key yet),
   * `AuthenticationFailed`, `UnknownGroup` (not subscribed).
   */
  channelReceive(post: Uint8Array, now: number): ChannelReceived;
  /**
   * Receives any pairwise control message from `peer`: a group sender key (0x23) or a
   * restricted channel's content key (0x33). If refused, the pairwise session is unchanged
   * and it can be retried (after the welcome, the commit or the subscription).
   */
  receiveControl(peer: string, message: Uint8Array): ControlReceived;
  /** Deletes this device's publisher and/or subscription state for the channel; whether any was held. */
  channelForget(channelId: Uint8Array): boolean;
  /** The ids of the channels this device publishes to. */
  channelPublisherIds(): Uint8Array[];
  /** The ids of the channels this device is subscribed to. */
  channelSubscriptionIds(): Uint8Array[];

  /** Releases the wasm memory (secrets are wiped). The object is unusable afterwards. */
  free(): void;
  [Symbol.dispose](): void;
}

// ---- Attachments (docs/protocol.md, chapter 14) -------------------------------------
// Stateless: key in, stream out; they never touch a Device. A pointer is its encoding
// (at most 587 bytes) and a SECRET (it holds the key): send it only inside an end-to-end
// encrypted message. Sizes, offsets and indexes are whole numbers (else `Malformed`).

/** What one `AttachmentEncryptor.finishStep()` produced. */
export interface AttachmentStep {
  /** Blob bytes to upload next (at most one segment; empty once `pointer` is set). */
  ciphertext: Uint8Array;
  /** The encoded pointer (secret) once the blob is complete, else `null`: call again. */
  pointer: Uint8Array | null;
}

/** A whole attachment encrypted in memory. */
export interface EncryptedAttachment {
  /** What the server stores: header, then every segment. */
  blob: Uint8Array;
  /** The encoded pointer (secret): send it inside an E2EE message, beside the blob's locator. */
  pointer: Uint8Array;
}

/** The layout a blob's 53-byte header fixes (decoded and bounded, not authenticated). */
export interface AttachmentHeaderInfo {
  /** Plaintext bytes per segment (the last one may hold fewer). */
  segmentSize: number;
  /** The padded plaintext length (a Padmé bucket, at least 1,024). */
  paddedLen: number;
  /** The number of segments (at least 1). */
  segmentCount: number;
  /** The whole blob's length: `53 + paddedLen + 16 * segmentCount`. */
  ciphertextLen: number;
}

/** Where a segment lies in the blob (tag included): `bytes=offset-(offset+length-1)`. */
export interface SegmentRange {
  offset: number;
  length: number;
}

/** What a pointer describes. Never the key. */
export interface AttachmentPointerInfo {
  /** The plaintext size in bytes (before padding). */
  size: number;
  /** The MIME type the sender gave (printable ASCII, not checked against the content). */
  contentType: string;
  /** The sender's file name, or null; safe to save under (no `/`, `\`, control characters, `.` or `..`). */
  fileName: string | null;
  /** SHA-256 of the whole blob (checked by `finish`). */
  digest: Uint8Array;
}

/**
 * Encrypts one attachment as it is read, in memory bounded by one segment (e.g. a `File`
 * read in 1 MiB slices). The size is declared up front. Upload, in order, every
 * `update` result and then every `finishStep().ciphertext` until `pointer` is set.
 * A fresh random key and nonce prefix per attachment. A refused call changes nothing.
 */
export declare class AttachmentEncryptor {
  /**
   * Starts an attachment of exactly `size` bytes with 64 KiB segments. `TooLarge` over
   * 2^40 bytes; `Malformed` for an invalid size, content type (printable ASCII, 1..=255
   * bytes) or file name (1..=255 UTF-8 bytes, no control characters, `/` or `\`, not `.`
   * or `..`; omit it or pass null for none).
   */
  constructor(size: number, contentType: string, fileName?: string | null);
  /** As the constructor with a segment size of 1,024..=1,048,576 bytes (else `Malformed`). */
  static withSegmentSize(size: number, segmentSize: number, contentType: string, fileName?: string | null): AttachmentEncryptor;
  /**
   * Encrypts the next plaintext bytes (any chunking) and returns the blob bytes now ready
   * (the header first, then whole segments; possibly empty). `SizeMismatch` past the
   * declared size, `StreamFinished` after the pointer; nothing changed either way.
   */
  update(plaintext: Uint8Array): Uint8Array;
  /**
   * Once exactly `size` bytes were given: the next remaining blob bytes (the zero-padded
   * tail, one segment per call), then `{ciphertext: empty, pointer}`. `SizeMismatch`
   * before the declared size was reached (nothing changed: write the rest first),
   * `StreamFinished` after the pointer.
   */
  finishStep(): AttachmentStep;
  /** The blob's 53-byte header. */
  header(): Uint8Array;
  /** Releases the wasm memory (the key is wiped). */
  free(): void;
  [Symbol.dispose](): void;
}

/**
 * Decrypts one blob as it is downloaded, for the pointer that names it, in memory bounded
 * by one segment. `update` releases the plaintext of each authenticated segment; the
 * attachment is complete, and is the blob the pointer names, ONLY when `finish()`
 * succeeds: do not save it as final, mark it received or forward it before then. A
 * refused `update` changes nothing (`received()` too): re-fetch from there and go on.
 */
export declare class AttachmentDecryptor {
  /** A decryptor for the blob the encoded `pointer` names (`Malformed` / `TooLarge` if it does not decode). */
  constructor(pointer: Uint8Array);
  /**
   * Takes the next blob bytes (any chunking) and returns the plaintext they complete
   * (possibly empty). Refused, in the order checked: the header (`Malformed`,
   * `WrongMessageType`, `UnsupportedVersion`), `WrongKey` (another pointer's blob),
   * `SizeMismatch`, `TrailingData` (bytes past the end), `Tampered` (a segment's tag),
   * `InvalidPadding`; `StreamFinished` after `finish`.
   */
  update(ciphertext: Uint8Array): Uint8Array;
  /**
   * Ends the stream. `Truncated`: not every segment arrived (nothing changed: more bytes
   * may come). `DigestMismatch`: not the blob the sender committed to (discard everything
   * released). `StreamFinished`: already finished.
   */
  finish(): void;
  /** Blob bytes accepted so far (where to resume a download). */
  received(): number;
  /** Releases the wasm memory (the key is wiped). */
  free(): void;
  [Symbol.dispose](): void;
}

/** What comparing a scanned safety-number payload with one's own found. */
export interface ScanResult {
  /** `'match'`: both identities are the expected ones; `'mismatch'`: another identity on one side or both (do not trust the conversation); `'versionMismatch'`: the other app uses another version (update, then compare again). */
  result: 'match' | 'mismatch' | 'versionMismatch';
  /** The scanned payload's version (only with `'versionMismatch'`). */
  theirs?: number;
}

/**
 * The safety number of a conversation (docs/protocol.md 15): the same 60 digits on both
 * sides, and each side's scannable payload to show as a QR code.
 */
export declare class SafetyNumber {
  /**
   * `localId` (the user's official email) holding `localIdentity` (an identity key
   * encoding, e.g. `device.identityKey`), and the remote user likewise. `Malformed`: an
   * empty or longer than 256-byte id or identity, the same user on both sides.
   */
  constructor(localId: string, localIdentity: Uint8Array, remoteId: string, remoteIdentity: Uint8Array);
  /** The 60 digits, without spaces. */
  digits(): string;
  /** The 60 digits in twelve groups of five, separated by spaces. */
  grouped(): string;
  /** This side's 66-byte scannable payload. */
  scannable(): Uint8Array;
  /** Compares a payload scanned from the other user's screen (constant time). Throws `Malformed` or `WrongMessageType` for a payload that is not one. */
  compareScanned(scanned: Uint8Array): ScanResult;
  /** Releases the wasm memory. */
  free(): void;
  [Symbol.dispose](): void;
}

/** What the phone sends a new device (docs/protocol.md 15.9). */
export interface LinkPayload {
  /** The user the device joins (canonical official email). */
  user: string;
  /** The user's master public key (Ed25519, 32 bytes). */
  masterPublic: Uint8Array;
  /** The master key's endorsement of the new device (1 to 484 bytes). */
  endorsement: Uint8Array;
  /** The current device list, with the new device in it (1 to 2,466 bytes). */
  deviceList: Uint8Array;
}

/** What a scanned provisioning offer says (show the device id before linking). */
export interface ProvisioningOfferInfo {
  deviceId: string;
  /** The new device's 66-byte identity key, which the endorsement signs. */
  identity: Uint8Array;
  /** When the new device made the offer (its clock). */
  createdAt: number;
}

/**
 * The new device's one-time provisioning secret (docs/protocol.md 15.9). Show `offer` as
 * a QR code; `open` the phone's message. A failed open changes nothing; after one
 * success every open throws `ProvisioningUsed`. The secret never leaves wasm memory.
 */
export declare class ProvisioningSecret {
  /** A fresh secret for the device with `identity` (e.g. `device.identityKey`) and `deviceId`, dated `now`. `Malformed` for a bad device id; `InvalidKey` / `WeakKey` / `Malformed` for a bad identity. */
  constructor(identity: Uint8Array, deviceId: string, now: number);
  /** The offer (at most 173 bytes): the QR code. */
  readonly offer: Uint8Array;
  /** Whether this secret already opened its message. */
  readonly isUsed: boolean;
  /** Opens the phone's message. Throws, changing nothing: `Malformed`, `TooLarge`, `NonContributory`, `AuthenticationFailed` (tampered or for another offer); `ProvisioningUsed` after one success. */
  open(message: Uint8Array): LinkPayload;
  /** Releases (and wipes) the wasm memory. */
  free(): void;
  [Symbol.dispose](): void;
}

/** The phone's side: seals `payload` to a scanned `offer`, fresh at `now`. `ProvisioningExpired` for an offer older than 600 s or dated over 60 s ahead; `Malformed`, `InvalidKey`, `WeakKey` for bad input. */
export declare function provisioningSeal(offer: Uint8Array, payload: LinkPayload, now: number): Uint8Array;
/** Decodes a scanned offer (no sealing). */
export declare function inspectProvisioningOffer(offer: Uint8Array): ProvisioningOfferInfo;

// ---- Device lists and linking (docs/web.md, "Device lists and linking") ----

/** One device of a list. */
export interface DeviceEntry {
  deviceId: string;
  /** Its identity key (66 bytes). */
  identityKey: Uint8Array;
}

/** A decoded, signature-checked device list (type 0x55). */
export interface DeviceListInfo {
  user: string;
  version: number;
  /** When it was issued (Unix seconds). */
  issuedAt: number;
  /** The master public key that signed it (32 bytes). */
  masterPublicKey: Uint8Array;
  /** The devices, in id order. */
  devices: DeviceEntry[];
  /** The encoding (publish these bytes). */
  bytes: Uint8Array;
}

/** A decoded, signature-checked device endorsement (type 0x56). */
export interface DeviceEndorsementInfo {
  user: string;
  deviceId: string;
  identityKey: Uint8Array;
  masterPublicKey: Uint8Array;
}

/** What `endorseDevice` returns: give both to the new device, publish the list. */
export interface EndorsedDevice {
  endorsement: Uint8Array;
  deviceList: Uint8Array;
}

/** What processing a device list did. Show `masterKeyChanged` to the user. */
export type DeviceListEvent =
  | { kind: 'new'; devices: DeviceEntry[] }
  | { kind: 'updated'; added: DeviceEntry[]; removed: DeviceEntry[] }
  | { kind: 'unchanged' }
  | { kind: 'masterKeyChanged'; previous: Uint8Array; new: Uint8Array };

/** A group that held a removed device but could not be rekeyed here. */
export interface GroupFailure {
  groupId: Uint8Array;
  error: ErrorCode;
}

/** The result of `processDeviceList` and `approveMasterKey`. */
export interface DeviceListUpdate {
  event: DeviceListEvent;
  /** Group rekeys for removed devices (deliver them as for `groupRemove`). */
  groupChanges: GroupChange[];
  groupFailures: GroupFailure[];
}

/** The result of `removeLinkedDevice`. */
export interface DeviceRemoval {
  /** The new own list: publish it. */
  deviceList: Uint8Array;
  groupChanges: GroupChange[];
  groupFailures: GroupFailure[];
}

/** A bundle for one device address (`user/device`). */
export interface AddressedBundle {
  address: string;
  bundle: Uint8Array;
}

/** Why a device got nothing from `encryptForUser` (or the flat code of another error). */
export type MissingReason =
  | 'NoDeviceList' | 'NoSessionOrBundle' | 'IdentityMismatch' | 'IdentityChanged' | 'MasterKeyChanged'
  | ErrorCode;

/** One device's line in a fan-out report. */
export interface DeviceReport {
  /** The device address (`user/device`). */
  address: string;
  /** Whether a message for it is in `messages`. */
  sent: boolean;
  /** Whether a new session was started from its bundle (a prekey message). */
  newSession: boolean;
  /** Why nothing was sent (`null` when sent). */
  missing: MissingReason | null;
}

/** The result of `encryptForUser`. */
export interface UserFanOut {
  /** One 1:1 message per device sent to (`peer` is the device address). */
  messages: Outgoing[];
  /** One line per device considered. */
  report: DeviceReport[];
}

/** What the phone gets from `linkDevice`. */
export interface LinkOutcome {
  /** The provisioning message (type 0x58): send it to the new device. */
  message: Uint8Array;
  /** The own user's new list, with the new device: publish `deviceList.bytes`. */
  deviceList: DeviceListInfo;
}

// Merged into the Device class above.
export interface Device {
  /** Replaces the trust roots (32-byte Ed25519 public keys, at most 16). */
  setTrustRoots(roots: Uint8Array[]): void;
  /** With `true`, session starts need a verified certificate (`CertificateRequired`). */
  setRequireCertificate(require: boolean): void;
  /** Whether session starts need a verified certificate. */
  readonly requireCertificate: boolean;
  /** Applies a signed revocation list: `StaleRevocationList`, `UnknownRoot`, `BadSignature`. */
  applyRevocationList(list: Uint8Array, agencyCertificate: Uint8Array | undefined, now: number): 'applied' | 'unchanged';
  /** Verifies a chain with the held roots and revocation lists at `now`. */
  verifyDevice(chain: Uint8Array, now: number): VerifiedDevice;
  /** `initiate`, for a bundle whose identity `certificate` certifies for `peer` (`CertificateMismatch`). */
  initiateCertified(peer: string, bundle: Uint8Array, certificate: VerifiedDevice): IdentityEvent;
  /** `decrypt`, for a sender identity `certificate` certifies for `peer` (`CertificateMismatch`). */
  decryptCertified(peer: string, message: Uint8Array, certificate: VerifiedDevice): DecryptResult;
  /** Approves `peer`'s pending identity change that `certificate` certifies. */
  approveCertified(peer: string, certificate: VerifiedDevice): void;
  /**
   * Makes this device its user's primary: a new master key and list version 1 with this
   * device alone (publish the returned bytes). `Duplicate` if it already has a master key
   * or adopted a list; `Malformed` for a non-canonical device id or user id.
   */
  createMasterKey(deviceId: string, now: number): Uint8Array;
  /** The primary adds a device (version + 1) and endorses it: `NotPrimary`, `Duplicate`, `TooManyDevices`. */
  endorseDevice(deviceId: string, identityKey: Uint8Array, now: number): EndorsedDevice;
  /** A linked device takes its user's list and its endorsement (`DeviceListMismatch` if they do not name this device). */
  adoptOwnDeviceList(deviceList: Uint8Array, endorsement: Uint8Array): void;
  /** The primary removes one of its other devices: `NotPrimary`, `UnknownDevice` (unlisted, or this device). */
  removeLinkedDevice(deviceId: string, now: number): DeviceRemoval;
  /**
   * Processes a device list from the server (a peer's or this user's own). Refused with
   * nothing changed: `Malformed`, `BadSignature`, `StaleDeviceList` (an older version), ...
   */
  processDeviceList(deviceList: Uint8Array, now: number): DeviceListUpdate;
  /** The app's decision on a master-key change: pins the 32-byte key and applies its pending list (`UnknownMasterKey` if none). */
  approveMasterKey(user: string, masterPublicKey: Uint8Array, now: number): DeviceListUpdate;
  /**
   * Encrypts for every listed device of `user` and this device's own other devices
   * (existing sessions, or new ones from `bundles`), with a report per device. Only
   * listed devices are ever sent to.
   */
  encryptForUser(user: string, plaintext: Uint8Array, bundles: AddressedBundle[]): UserFanOut;
  /** This device's own user's newest list. */
  ownDeviceList(): DeviceListInfo | undefined;
  /** The newest accepted list of `user` (`Malformed` for a non-canonical user id). */
  deviceList(user: string): DeviceListInfo | undefined;
  /** The list by another master key awaiting approval for `user`. */
  pendingDeviceList(user: string): DeviceListInfo | undefined;
  /** Whether this device holds its user's master key. */
  readonly isPrimary: boolean;
  /** This device's address (`user/device`) once it has a list. */
  readonly ownAddress: string | undefined;
  /**
   * The phone (primary) links the device whose offer it scanned: endorses it, adds it to
   * the own list and seals the payload. `ProvisioningExpired`, `NotPrimary`, `Duplicate`,
   * `TooManyDevices`, `Malformed`; a refused offer changes nothing.
   */
  linkDevice(offer: Uint8Array, now: number): LinkOutcome;
  /**
   * The new device completes the link: opens the phone's message with `secret`, checks
   * that it names this device and adopts the list (returned). Refused, changing neither
   * the device nor the secret: the errors of `ProvisioningSecret.open`
   * (`ProvisioningUsed` once spent), `DeviceListMismatch`, `BadSignature`, `Malformed`.
   */
  completeLink(secret: ProvisioningSecret, message: Uint8Array): DeviceListInfo;
}

/** Decodes a device list and checks its signature by the master key it names. */
export declare function decodeDeviceList(deviceList: Uint8Array): DeviceListInfo;
/** Decodes a device endorsement and checks its signature by the master key it names. */
export declare function decodeDeviceEndorsement(endorsement: Uint8Array): DeviceEndorsementInfo;

/** Encrypts a whole attachment held in memory (64 KiB segments). */
export declare function attachmentEncrypt(plaintext: Uint8Array, contentType: string, fileName?: string | null): EncryptedAttachment;
/** Decrypts a whole blob and checks it against the pointer (complete, digest): the errors of `AttachmentDecryptor`. */
export declare function attachmentDecrypt(pointer: Uint8Array, blob: Uint8Array): Uint8Array;
/**
 * Decrypts segment `index` alone (seeking in audio or video): `header` is the blob's first
 * 53 bytes, `segment` the bytes at `attachmentSegmentRange(header, index)`. Returns its
 * real plaintext (padding stripped). The segment is authentic, but only a whole
 * `AttachmentDecryptor` run checks the digest. `Malformed` for a segment the blob does not
 * have, `Truncated` / `TrailingData` for a wrong length, `Tampered`, and the header checks.
 */
export declare function attachmentDecryptSegment(pointer: Uint8Array, header: Uint8Array, index: number, segment: Uint8Array): Uint8Array;
/** The layout a blob's 53-byte header fixes (`Malformed` if it does not decode). */
export declare function attachmentHeaderInfo(header: Uint8Array): AttachmentHeaderInfo;
/** Where segment `index` lies in the blob, for a range request (`Malformed` if there is none). */
export declare function attachmentSegmentRange(header: Uint8Array, index: number): SegmentRange;
/** The segment holding plaintext byte `plaintextOffset` (`Malformed` past the last segment; keep offsets below the pointer's `size`). */
export declare function attachmentSegmentForOffset(header: Uint8Array, plaintextOffset: number): number;
/** What an encoded pointer describes (never the key). */
export declare function attachmentPointerInfo(pointer: Uint8Array): AttachmentPointerInfo;
/** The padded length of a `size`-byte attachment: the only size the server learns (`TooLarge` over 2^40). */
export declare function attachmentPaddedLen(size: number): number;

export declare function libraryVersion(): string;
export declare function errorCodes(): ErrorCode[];
export declare function limits(): Limits;
/** Decodes and verifies a bundle: every signature, key and byte. */
export declare function verifyBundle(bundle: Uint8Array): BundleInfo;
export declare function identityFingerprint(identityKey: Uint8Array): string;
/** The digest by which a retry request names a message. */
export declare function messageDigest(message: Uint8Array): Uint8Array;
/**
 * Verifies a forwarded announcement (0x30) on its own, with no state: signed by
 * `agencyKey` (the channel's 32-byte signing key from the agency's directory; else
 * `WrongSigner`) with a valid strict Ed25519 signature (else `BadSignature`). Proves who
 * posted it, not that it is fresh or that the key is still the channel's current key.
 */
export declare function verifyAnnouncement(announcement: Uint8Array, agencyKey: Uint8Array): Announcement;

// Agency-certified identities (docs/web.md, docs/protocol.md 15.4-15.11).
/** A device certificate chain verified under the roots at a time: the proof the certified calls take. */
export declare class VerifiedDevice {
  private constructor();
  free(): void;
  /** The certified device address (`user/device`): the peer name. */
  readonly peer: string;
  /** The certified identity key (66 bytes). */
  readonly identityKey: Uint8Array;
  readonly agencyName: string;
  /** The agency's Ed25519 public key (32 bytes). */
  readonly agencyKey: Uint8Array;
  readonly serial: bigint;
  /** The device certificate's `not_after` (Unix seconds). */
  readonly notAfter: number;
}

/** A government trust root's signing key (held offline; for issuing tools and tests). */
export declare class RootKey {
  private constructor();
  free(): void;
  static fromSeed(seed: Uint8Array): RootKey;
  static generate(): RootKey;
  readonly publicKey: Uint8Array;
  /** An agency certificate (type 0x51) for `agencyKey`, constrained to `domains`. */
  certifyAgency(serial: bigint, agencyKey: Uint8Array, name: string, domains: string[], notBefore: number, notAfter: number): Uint8Array;
  /** A signed revocation list (type 0x54) of agency-certificate serials. */
  revocationList(seq: bigint, issuedAt: number, serials: BigUint64Array): Uint8Array;
}

/** An agency's signing key (for issuing tools and tests). */
export declare class AgencyKey {
  private constructor();
  free(): void;
  static fromSeed(seed: Uint8Array): AgencyKey;
  static generate(): AgencyKey;
  readonly publicKey: Uint8Array;
  /** A device certificate (type 0x52) for `address` (`user/device`) and its identity key. */
  certifyDevice(serial: bigint, address: string, identityKey: Uint8Array, notBefore: number, notAfter: number): Uint8Array;
  /** A signed revocation list (type 0x54) of device-certificate serials. */
  revocationList(seq: bigint, issuedAt: number, serials: BigUint64Array): Uint8Array;
}

/** A revocation list to apply before verifying, with its agency's certificate if an agency issued it. */
export interface RevocationInput {
  list: Uint8Array;
  agencyCertificate?: Uint8Array;
}

/** A chain (type 0x53) of a device certificate and its agency certificate. */
export declare function certificateChain(deviceCertificate: Uint8Array, agencyCertificate: Uint8Array): Uint8Array;
/**
 * Verifies a chain under `roots` (32-byte keys) after applying `revocationLists`, at `now`:
 * `CertificateExpired`, `CertificateNotYetValid`, `WrongDomain`, `CertificateRevoked`,
 * `BadSignature`, `UnknownRoot`, `Malformed`.
 */
export declare function verifyCertificateChain(chain: Uint8Array, roots: Uint8Array[], revocationLists: RevocationInput[], now: number): VerifiedDevice;


/** Resolves once the WebAssembly module is ready (immediately in Node and after the automatic init). */
export declare const ready: Promise<void>;
/** The default location of the .wasm file. */
export declare const wasmUrl: URL;
/** Instantiates the module (only needed with '@gochat/e2ee/core'). */
export declare function init(input?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module): Promise<void>;
/** Instantiates the module synchronously from its bytes (only needed with '@gochat/e2ee/core'). */
export declare function initSync(module: BufferSource | WebAssembly.Module): void;

// ---------------------------------------------------------------------------------------
// Persistent store (IndexedDB): docs/web.md, "Persistent store (IndexedDB)".

/** The schema version of the stores written: the IndexedDB database version and the `schema_version` meta row. */
export declare const STORE_SCHEMA_VERSION: 1;

/** The IndexedDB database name of store `name` (`gochat-e2ee:<name>`), also the name of its Web Lock. */
export declare function storeDatabaseName(name: string): string;

/** A drained journal: the rows to write. Record keys are 32-byte keyed hashes; a `null` value is a tombstone. */
export interface StoreJournalRows {
  meta: StoreMetaRow[];
  records: StoreRecordRow[];
}
/** A meta row: name and value. */
export type StoreMetaRow = [name: string, value: Uint8Array];
/** A record row: 32-byte key hash, generation, sealed value (`null` = tombstone). */
export type StoreRecordRow = [keyHash: Uint8Array, generation: number, value: Uint8Array | null];

/**
 * The wasm handle on one store's rows (the store crate's JournalBackend): reads are served
 * from the rows fed in, committed writes go to a journal that `IndexedDbStore` drains into
 * its IndexedDB transaction. A commit here is not durable until that transaction completes.
 */
export declare class StoreJournal {
  private constructor();
  free(): void;
  /** A handle on a new, empty store (schema version 1). */
  static empty(): StoreJournal;
  /** A handle on the stored rows; `UnsupportedSchema` for a newer schema, `StoreCorrupt` without a valid `schema_version` row. */
  static load(meta: StoreMetaRow[], records: StoreRecordRow[]): StoreJournal;
  /** The highest record generation seen: feed the rows above it before the next operation. */
  syncedGeneration(): number;
  /** Applies a meta row another tab committed (between operations only). */
  feedMeta(name: string, value: Uint8Array): void;
  /** Applies a record row another tab committed (`null` = tombstone; between operations only). */
  feedRecord(keyHash: Uint8Array, generation: number, value: Uint8Array | null): void;
  /** Drains the journal of the transactions committed since the last drain. */
  takeJournal(): StoreJournalRows;
  /** After a failed IndexedDB write: every later call fails with `StoreCorrupt`. */
  poison(): void;
  /** Replaces the rows in place by those read again (as `load`), clearing a poisoning; a stored device on this handle keeps it. */
  reload(meta: StoreMetaRow[], records: StoreRecordRow[]): void;
  /** Starts a transaction (no nesting: `InvalidStoreParameters`). */
  begin(): void;
  /** Moves the transaction's writes into the journal. */
  commit(): void;
  /** Drops the transaction's writes. */
  rollback(): void;
  /** A meta value, or null. */
  getMeta(name: string): Uint8Array | null;
  /** Writes a meta value (in a transaction). */
  putMeta(name: string, value: Uint8Array): void;
  /** A record's live value, or null. */
  get(keyHash: Uint8Array): Uint8Array | null;
  /** Writes (or with `null` tombstones) a record at `generation` (in a transaction). */
  put(keyHash: Uint8Array, value: Uint8Array | null, generation: number): void;
}

/** What a store operation may return: anything but a promise (a thenable), since the IndexedDB transaction would commit while it waits. */
export type StoreOpResult = string | number | boolean | bigint | symbol | null | undefined | void | (object & { then?: never });

/** Options of `IndexedDbStore.open`. */
export interface IndexedDbStoreOptions {
  /** Replaces `globalThis.indexedDB` (e.g. fake-indexeddb in Node). */
  indexedDB?: IDBFactory;
  /** Replaces `navigator.locks`; `null` forces the in-process queue (one JS realm only). */
  locks?: LockManager | null;
  /** The IndexedDB durability hint of each transaction: 'strict' (the default: flushed to disk before `complete`) or 'relaxed' (faster; a commit may be lost on power loss, never half-written). */
  durability?: 'strict' | 'relaxed';
  /** Test hook: runs after the journal is written, before `complete` (a test aborts `tx` here). */
  beforeComplete?: (tx: IDBTransaction) => void;
}

/**
 * A store in IndexedDB (database `gochat-e2ee:<name>`, object stores `meta` and `records`),
 * shared by every tab of the origin. Each operation runs under the Web Lock of the store,
 * in one readwrite IndexedDB transaction, after feeding the rows other tabs committed; its
 * promise resolves only after the transaction's `complete` event (persist before send).
 * An aborted transaction rejects with `StoreIo` and the handle reloads before its next operation.
 */
export declare class IndexedDbStore {
  private constructor();
  /** The store name given to `open`. */
  readonly name: string;
  /** The highest record generation this handle has seen. */
  readonly generation: number;
  /** Opens (creating if absent) store `name`; `UnsupportedSchema` for a newer database version. */
  static open(name: string, options?: IndexedDbStoreOptions): Promise<IndexedDbStore>;
  /** Deletes the database of store `name` (every tab must have closed it). */
  static deleteStore(name: string, options?: Pick<IndexedDbStoreOptions, 'indexedDB'>): Promise<void>;
  /** Runs the synchronous `op` as one operation (see the class doc); never pass an async function. */
  transact<T extends StoreOpResult>(op: (journal: StoreJournal) => T): Promise<T>;
  /** Closes the handle; later operations reject with `StoreIo`. */
  close(): void;
}

/** The Argon2id cost of a passcode: memory in KiB (8 MiB to 1 GiB), passes (1 to 16), lanes (1 to 8). */
export interface PasscodeCost {
  memoryKib: number;
  iterations: number;
  lanes: number;
}
/** The default passcode cost: 64 MiB, 3 passes, 1 lane. */
export declare function defaultPasscodeCost(): PasscodeCost;

/**
 * What unlocks a store: a 32-byte key (from `platformKeyFor`), or a passcode (1 to 1024
 * bytes of UTF-8) stretched with Argon2id at `cost` (default `defaultPasscodeCost()`; used
 * when a keyslot is written: create, import, the new side of `changePasscode`).
 */
export type StoreUnlock = { platformKey: Uint8Array; passcode?: never } | { passcode: string; cost?: PasscodeCost; platformKey?: never };

/** Every method of `T` made async (its result after the store commit); properties unchanged. */
export type Stored<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : T[K];
};

/**
 * A device kept in an IndexedDB store: every method of `Device`, async. Each call takes the
 * store's Web Lock, runs in one readwrite IndexedDB transaction (after feeding in what other
 * tabs committed), and resolves only after the transaction's `complete` (persist before
 * send); a rejected call changed nothing; an aborted transaction rejects with `StoreIo`,
 * never releases its result, and the device reloads before its next call. Getters stay
 * synchronous: `userId`, `identityKey`, `fingerprint` never change; the others read this
 * tab's view as of its last call (`await syncStore()` first). `export` rejects with
 * `NotSupported` (use `moveOut`).
 */
export interface StoredDevice extends Stored<Omit<Device, 'free' | 'storeReloaded' | typeof Symbol.dispose>> {}
export declare class StoredDevice {
  private constructor();
  /** The store's name. */
  readonly storeName: string;
  /** Waits for the running call, frees the wasm device (secrets wiped) and closes the store handle. */
  close(): Promise<void>;
  /** As `close`, without waiting for a running call. */
  free(): void;
  [Symbol.dispose](): void;
}

/**
 * At most this many calls of one stored device, queued while its store was busy, share one
 * IndexedDB transaction (each keeps its own result or error; all are released after it completes).
 */
export declare const MAX_CALLS_PER_TRANSACTION: 64;

/** Creates a device (as `new Device(userId, now)`) in the new store `name`; `StoreExists` if it holds one. */
export declare function createStoredDevice(name: string, unlock: StoreUnlock, userId: string, now: number, options?: IndexedDbStoreOptions): Promise<StoredDevice>;
/**
 * Opens the device in store `name`. `WrongKey` (counted, nothing else changed),
 * `AttemptLimitReached` (passcodes, at the limit), `StoreRetired` (moved out), `StoreCorrupt` (no store there: an empty database is left, delete it with `IndexedDbStore.deleteStore`).
 */
export declare function openStoredDevice(name: string, unlock: StoreUnlock, options?: OpenStoredDeviceOptions): Promise<StoredDevice>;
/** Options of `openStoredDevice`: those of `IndexedDbStore.open`, and the rollback anchor. */
export interface OpenStoredDeviceOptions extends IndexedDbStoreOptions {
  /** A `storeGeneration` recorded outside the store: a store below it is an older copy put back (`StoreRolledBack`, nothing loaded). */
  minGeneration?: number;
}
/** Creates store `name` from a `moveOut` container (opened with `transferPasscode`). */
export declare function importStoredDevice(name: string, unlock: StoreUnlock, container: Uint8Array, transferPasscode: string, options?: IndexedDbStoreOptions): Promise<StoredDevice>;
/** Wrong passcodes or keys counted in store `name` since its last successful unlock. */
export declare function storeFailedAttempts(name: string, options?: IndexedDbStoreOptions): Promise<number>;

/** The IndexedDB database holding this origin's non-extractable platform keys. */
export declare const PLATFORM_KEY_DATABASE: 'gochat-e2ee-platform-keys';
/** The HMAC input from which a store key is derived. */
export declare const PLATFORM_KEY_LABEL: 'GoChat-E2EE web store key v1';
/**
 * Creates the platform key of store `name`, a non-extractable HMAC-SHA-256 CryptoKey kept in
 * IndexedDB, and returns the 32-byte store key derived from it (`StoreExists` if one exists).
 */
export declare function generatePlatformKey(name: string, options?: Pick<IndexedDbStoreOptions, 'indexedDB'>): Promise<Uint8Array>;
/** The 32-byte store key of `name`: HMAC-SHA-256(platform key, PLATFORM_KEY_LABEL); `null` if `name` has no platform key. */
export declare function platformKeyFor(name: string, options?: Pick<IndexedDbStoreOptions, 'indexedDB'>): Promise<Uint8Array | null>;
/** Deletes the platform key of `name` (its store can no longer be opened with it); whether one was held. */
export declare function deletePlatformKey(name: string, options?: Pick<IndexedDbStoreOptions, 'indexedDB'>): Promise<boolean>;
