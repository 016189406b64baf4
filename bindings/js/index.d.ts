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
  | 'WrongSigner' | 'StaleSequence' | 'FromFuture' | 'WrongChannel';

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
  | { kind: 'changed'; previous: Uint8Array; approved: boolean };

/** What a device does when a peer shows a changed identity (default `requireApproval`). */
export type IdentityPolicy = 'requireApproval' | 'notify';

/** A decrypted message, its sender's identity key (66 bytes) and the identity event. */
export interface DecryptResult {
  plaintext: Uint8Array;
  senderIdentity: Uint8Array;
  identityEvent: IdentityEvent;
}

/** The limits the library enforces (docs/protocol.md, section 10). */
export interface Limits {
  maxForwardJump: number;
  maxSkippedKeys: number;
  maxReceiverChains: number;
  maxArchivedSessions: number;
  maxMessageBytes: number;
  maxPlaintextBytes: number;
  maxBundleBytes: number;
  paddingBlock: number;
}

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
   * event must be checked.
   */
  decrypt(peer: string, message: Uint8Array): DecryptResult;
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
  /** The whole device as a snapshot encrypted under a 32-byte key. */
  export(key: Uint8Array): Uint8Array;
  exportSession(peer: string, key: Uint8Array): Uint8Array;
  importSession(peer: string, key: Uint8Array, snapshot: Uint8Array): void;
  /** Releases the wasm memory (secrets are wiped). The object is unusable afterwards. */
  free(): void;
  [Symbol.dispose](): void;
}

export declare function libraryVersion(): string;
export declare function errorCodes(): ErrorCode[];
export declare function limits(): Limits;
/** Decodes and verifies a bundle: every signature, key and byte. */
export declare function verifyBundle(bundle: Uint8Array): BundleInfo;
export declare function identityFingerprint(identityKey: Uint8Array): string;
/** The digest by which a retry request names a message. */
export declare function messageDigest(message: Uint8Array): Uint8Array;

/** Resolves once the WebAssembly module is ready (immediately in Node and after the automatic init). */
export declare const ready: Promise<void>;
/** The default location of the .wasm file. */
export declare const wasmUrl: URL;
/** Instantiates the module (only needed with '@gochat/e2ee/core'). */
export declare function init(input?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module): Promise<void>;
/** Instantiates the module synchronously from its bytes (only needed with '@gochat/e2ee/core'). */
export declare function initSync(module: BufferSource | WebAssembly.Module): void;
