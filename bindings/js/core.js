// @gochat/e2ee, no automatic initialisation: call `init()` (async, fetches the .wasm) or
// `initSync(bytes)` before using anything else. `index.js` (browsers, bundlers) and
// `node.js` (Node) do that for you and re-export everything below.
//
// Thin layer over the wasm-bindgen glue in ./pkg: errors thrown by the library become
// `GoChatError` instances (an `Error` subclass with `code` and `retryMayHelp`).
import rawInit, {
  initSync as rawInitSync,
  Device,
  errorCodes,
  libraryVersion,
  limits,
  verifyBundle as rawVerifyBundle,
  identityFingerprint as rawIdentityFingerprint,
  messageDigest,
  defaultPasscodeCost,
  verifyAnnouncement as rawVerifyAnnouncement,
  AttachmentEncryptor as RawAttachmentEncryptor,
  AttachmentDecryptor as RawAttachmentDecryptor,
  attachmentEncrypt as rawAttachmentEncrypt,
  attachmentDecrypt as rawAttachmentDecrypt,
  attachmentDecryptSegment as rawAttachmentDecryptSegment,
  attachmentHeaderInfo as rawAttachmentHeaderInfo,
  attachmentSegmentRange as rawAttachmentSegmentRange,
  attachmentSegmentForOffset as rawAttachmentSegmentForOffset,
  attachmentPointerInfo as rawAttachmentPointerInfo,
  attachmentPaddedLen as rawAttachmentPaddedLen,
  SafetyNumber as RawSafetyNumber,
  ProvisioningSecret as RawProvisioningSecret,
  provisioningSeal as rawProvisioningSeal,
  inspectProvisioningOffer as rawInspectProvisioningOffer,
  decodeDeviceList as rawDecodeDeviceList,
  decodeDeviceEndorsement as rawDecodeDeviceEndorsement,
  RootKey as RawRootKey,
  AgencyKey as RawAgencyKey,
  VerifiedDevice,
  StoreJournal as RawStoreJournal,
  certificateChain as rawCertificateChain,
  verifyCertificateChain as rawVerifyCertificateChain,
} from './pkg/gochat_e2ee_wasm.js';

/** Errors thrown by the library. `code` is stable; see `errorCodes()`. */
export class GoChatError extends Error {
  constructor(message, code, retryMayHelp = false) {
    super(message);
    this.code = code;
    this.retryMayHelp = retryMayHelp;
  }
}
Object.defineProperty(GoChatError.prototype, 'name', { value: 'GoChatError', writable: true, configurable: true });

/** True when `e` was thrown by the library (also for errors from another copy of it). */
export function isGoChatError(e) {
  return e instanceof GoChatError
    || (e instanceof Error && e.name === 'GoChatError' && typeof e.code === 'string');
}

// The wasm side throws plain `Error`s named "GoChatError" with `code`/`retryMayHelp`;
// re-parent them (keeps message and stack) so `instanceof GoChatError` works.
function adopt(e) {
  if (e instanceof Error && e.name === 'GoChatError' && !(e instanceof GoChatError)) {
    Object.setPrototypeOf(e, GoChatError.prototype);
  }
  return e;
}

function wrap(fn) {
  return function (...args) {
    try {
      return fn.apply(this, args);
    } catch (e) {
      throw adopt(e);
    }
  };
}

const THROWING_METHODS = [
  'generateOneTimePreKeys', 'generatePqPreKeys', 'rotateSignedPreKey', 'rotateLastResortPreKey',
  'nextBundle', 'initiate', 'setIdentityPolicy', 'approveIdentity', 'encrypt', 'decrypt',
  'retryRequest', 'handleRetryRequest',
  'export', 'exportSession', 'importSession',
  'groupCreate', 'groupAdd', 'groupRemove', 'groupReplace', 'groupProcessCommit', 'groupJoin',
  'groupEncrypt', 'groupDecrypt', 'groupReceive', 'groupResendKey', 'groupSetRotationPolicy',
  'groupForget', 'groupInfo',
  'channelCreate', 'channelPublicKey', 'channelAnnounce', 'channelRotateSigningKey', 'channelSendKey',
  'channelRotateContentKey', 'channelSubscribe', 'channelReceive', 'receiveControl', 'channelForget',
  // Changes that a stored device may fail to commit (they cannot fail in memory).
  'expirePreKeys', 'removeSessions', 'forgetIdentity', 'setRequireCertificate',
  // The store (docs/web.md, "Stored devices"): NotSupported in memory, except ack and syncStore.
  'ack', 'ackBatch', 'changePasscode', 'setAttemptLimit', 'moveOut', 'syncStore',
];
for (const m of THROWING_METHODS) {
  Device.prototype[m] = wrap(Device.prototype[m]);
}
for (const m of ['import', 'createStored', 'openStored', 'importStored']) Device[m] = wrap(Device[m]);
// decryptBatch returns the errors it did not throw: re-parent those too.
{
  const rawBatch = wrap(Device.prototype.decryptBatch);
  Device.prototype.decryptBatch = function (messages) {
    const out = rawBatch.call(this, messages);
    for (const o of out) if (!o.ok) adopt(o.error);
    return out;
  };
}
// Device lists and linking (docs/web.md, "Device lists and linking").
const DEVICE_LIST_METHODS = [
  'createMasterKey', 'endorseDevice', 'adoptOwnDeviceList', 'removeLinkedDevice', 'processDeviceList',
  'approveMasterKey', 'encryptForUser', 'deviceList', 'pendingDeviceList', 'linkDevice', 'completeLink',
];
for (const m of DEVICE_LIST_METHODS) {
  Device.prototype[m] = wrap(Device.prototype[m]);
}
// Agency-certified identities (docs/web.md, "Agency certificates").
const CERTIFICATE_METHODS = [
  'setTrustRoots', 'applyRevocationList', 'verifyDevice', 'initiateCertified', 'decryptCertified', 'approveCertified',
];
for (const m of CERTIFICATE_METHODS) {
  Device.prototype[m] = wrap(Device.prototype[m]);
}

// A class whose constructor may throw: a Proxy re-parents what the constructor throws
// (prototype, statics and `instanceof` are the class's own).
function wrapClass(cls, methods, statics = []) {
  for (const m of methods) cls.prototype[m] = wrap(cls.prototype[m]);
  for (const m of statics) cls[m] = wrap(cls[m]);
  return new Proxy(cls, {
    construct(target, args, newTarget) {
      try {
        return Reflect.construct(target, args, newTarget);
      } catch (e) {
        throw adopt(e);
      }
    },
  });
}
// Attachments (docs/web.md, "Attachments"): stateless streams, no Device involved.
const AttachmentEncryptor = wrapClass(RawAttachmentEncryptor, ['update', 'finishStep'], ['withSegmentSize']);
const AttachmentDecryptor = wrapClass(RawAttachmentDecryptor, ['update', 'finish']);
// Safety numbers (docs/web.md, "Safety numbers"): stateless.
const SafetyNumber = wrapClass(RawSafetyNumber, ['compareScanned']);
// Linking a device (docs/web.md, "Linking a device"): the new device's one-time secret.
const ProvisioningSecret = wrapClass(RawProvisioningSecret, ['open']);
// Certificate issuing keys (for issuing tools and tests).
const RootKey = wrapClass(RawRootKey, ['certifyAgency', 'revocationList'], ['fromSeed']);
const AgencyKey = wrapClass(RawAgencyKey, ['certifyDevice', 'revocationList'], ['fromSeed']);
// The IndexedDB store's wasm handle (docs/web.md, "Persistent store (IndexedDB)").
const StoreJournal = wrapClass(RawStoreJournal, ['feedMeta', 'feedRecord', 'takeJournal', 'reload', 'begin', 'commit', 'rollback', 'getMeta', 'putMeta', 'get', 'put'], ['load']);

// wasm-bindgen already adds [Symbol.dispose] = free where the symbol exists.
for (const cls of [Device, RawAttachmentEncryptor, RawAttachmentDecryptor, RawSafetyNumber, RawProvisioningSecret, RawRootKey, RawAgencyKey, VerifiedDevice, RawStoreJournal]) {
  if (typeof Symbol.dispose === 'symbol' && !cls.prototype[Symbol.dispose]) {
    cls.prototype[Symbol.dispose] = cls.prototype.free;
  }
}

export const verifyBundle = wrap(rawVerifyBundle);
export const identityFingerprint = wrap(rawIdentityFingerprint);
export const verifyAnnouncement = wrap(rawVerifyAnnouncement);
export const attachmentEncrypt = wrap(rawAttachmentEncrypt);
export const attachmentDecrypt = wrap(rawAttachmentDecrypt);
export const attachmentDecryptSegment = wrap(rawAttachmentDecryptSegment);
export const attachmentHeaderInfo = wrap(rawAttachmentHeaderInfo);
export const attachmentSegmentRange = wrap(rawAttachmentSegmentRange);
export const attachmentSegmentForOffset = wrap(rawAttachmentSegmentForOffset);
export const attachmentPointerInfo = wrap(rawAttachmentPointerInfo);
export const attachmentPaddedLen = wrap(rawAttachmentPaddedLen);
export const provisioningSeal = wrap(rawProvisioningSeal);
export const inspectProvisioningOffer = wrap(rawInspectProvisioningOffer);
export const decodeDeviceList = wrap(rawDecodeDeviceList);
export const decodeDeviceEndorsement = wrap(rawDecodeDeviceEndorsement);
export const certificateChain = wrap(rawCertificateChain);
export const verifyCertificateChain = wrap(rawVerifyCertificateChain);
// The IndexedDB store (docs/web.md, "Persistent store (IndexedDB)").
export {
  IndexedDbStore, STORE_SCHEMA_VERSION, storeDatabaseName,
  StoredDevice, MAX_CALLS_PER_TRANSACTION, createStoredDevice, openStoredDevice, importStoredDevice, storeFailedAttempts,
  generatePlatformKey, platformKeyFor, deletePlatformKey, PLATFORM_KEY_DATABASE, PLATFORM_KEY_LABEL,
} from './store.js';
export { Device, defaultPasscodeCost, AttachmentEncryptor, AttachmentDecryptor, SafetyNumber, ProvisioningSecret, RootKey, AgencyKey, VerifiedDevice, StoreJournal, errorCodes, libraryVersion, limits, messageDigest };

let resolveReady;
let rejectReady;
/** Resolves once the WebAssembly module is instantiated. */
export const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
ready.catch(() => {}); // an init failure is reported by init(), not as an unhandled rejection
let started = null;

/** The default location of the .wasm file, next to the glue code. */
export const wasmUrl = new URL('./pkg/gochat_e2ee_wasm_bg.wasm', import.meta.url);

/**
 * Instantiates the module (once). `input`: a URL/Request/Response/BufferSource/
 * WebAssembly.Module; default: fetch `wasmUrl`.
 */
export function init(input) {
  if (!started) {
    started = rawInit({ module_or_path: input ?? wasmUrl }).then(
      () => { resolveReady(); },
      (e) => { rejectReady(e); started = null; throw e; },
    );
  }
  return started;
}

/** Instantiates the module synchronously from its bytes or a compiled WebAssembly.Module. */
export function initSync(module) {
  rawInitSync({ module });
  started ??= Promise.resolve();
  resolveReady();
}
