// Compiled (never run) by types.test.mjs with `strict`: the hand-written index.d.ts must
// type-check real use of the package, and refuse the misuse marked @ts-expect-error.
import {
  AttachmentDecryptor,
  AttachmentEncryptor,
  attachmentDecrypt,
  attachmentDecryptSegment,
  attachmentEncrypt,
  attachmentHeaderInfo,
  attachmentPaddedLen,
  attachmentPointerInfo,
  attachmentSegmentForOffset,
  attachmentSegmentRange,
  Device,
  isGoChatError,
  limits,
  type AttachmentHeaderInfo,
  type AttachmentPointerInfo,
  type AttachmentStep,
  type EncryptedAttachment,
  type ErrorCode,
  type SegmentRange,
} from '../index.js';

// Streams a File or Blob through an encryptor in 1 MiB slices; uploads every chunk.
export async function upload(file: Blob, put: (chunk: Uint8Array) => Promise<void>): Promise<Uint8Array> {
  const enc = new AttachmentEncryptor(file.size, file.type || 'application/octet-stream', 'name.bin');
  for (let at = 0; at < file.size; at += 1 << 20) {
    await put(enc.update(new Uint8Array(await file.slice(at, at + (1 << 20)).arrayBuffer())));
  }
  for (;;) {
    const step: AttachmentStep = enc.finishStep();
    await put(step.ciphertext);
    if (step.pointer !== null) {
      enc.free();
      return step.pointer;
    }
  }
}

export function download(pointer: Uint8Array, chunks: Uint8Array[]): Uint8Array[] {
  const dec = new AttachmentDecryptor(pointer);
  const out = chunks.map((c) => dec.update(c));
  try {
    dec.finish();
  } catch (e) {
    if (isGoChatError(e)) {
      const code: ErrorCode = e.code;
      if (code === 'Truncated' || code === 'DigestMismatch') return [];
    }
    throw e;
  }
  const received: number = dec.received();
  void received;
  dec.free();
  return out;
}

export function seek(pointer: Uint8Array, header: Uint8Array, blob: Uint8Array, offset: number): Uint8Array {
  const info: AttachmentHeaderInfo = attachmentHeaderInfo(header);
  const index: number = attachmentSegmentForOffset(header, Math.min(offset, info.paddedLen - 1));
  const r: SegmentRange = attachmentSegmentRange(header, index);
  return attachmentDecryptSegment(pointer, header, index, blob.subarray(r.offset, r.offset + r.length));
}

export function oneShot(data: Uint8Array): string | null {
  const e: EncryptedAttachment = attachmentEncrypt(data, 'image/png');
  attachmentEncrypt(data, 'image/png', null);
  const small = AttachmentEncryptor.withSegmentSize(data.length, 4096, 'image/png', 'a.png');
  small.free();
  const plain: Uint8Array = attachmentDecrypt(e.pointer, e.blob);
  const p: AttachmentPointerInfo = attachmentPointerInfo(e.pointer);
  const l = limits();
  const n: number = attachmentPaddedLen(plain.length) + l.headerBytes + l.maxPointerBytes + p.size;
  void n;
  void Device;
  // @ts-expect-error a pointer's info has no key
  void p.key;
  // @ts-expect-error the file name may be null
  const len: number = p.fileName.length;
  void len;
  return p.fileName;
}

export function misuse(enc: AttachmentEncryptor): void {
  // @ts-expect-error the pointer is null until the last step
  const bytes: Uint8Array = enc.finishStep().pointer;
  void bytes;
  // @ts-expect-error sizes are numbers, not bigints
  void new AttachmentEncryptor(10n, 'text/plain');
  // @ts-expect-error the decryptor takes the encoded pointer
  void new AttachmentDecryptor('pointer');
  // @ts-expect-error not an error code
  const c: ErrorCode = 'Tampering';
  void c;
}

// Device lists and linking: the phone links a web device and fans a message out to it.
import {
  decodeDeviceList,
  ProvisioningSecret,
  type DeviceListInfo,
  type MissingReason,
  type UserFanOut,
} from '../index.js';

export function linkAndSend(phone: Device, web: Device, secret: ProvisioningSecret, now: number): UserFanOut {
  phone.createMasterKey('phone', now);
  const link = phone.linkDevice(secret.offer, now);
  const list: DeviceListInfo = web.completeLink(secret, link.message);
  const again: DeviceListInfo = decodeDeviceList(list.bytes);
  const update = web.processDeviceList(again.bytes, now);
  if (update.event.kind === 'masterKeyChanged') web.approveMasterKey(list.user, update.event.new, now);
  const address: string | undefined = web.ownAddress;
  void address;
  const out = phone.encryptForUser(list.user, new Uint8Array(1), [{ address: `${list.user}/web-1`, bundle: web.nextBundle() }]);
  const why: MissingReason | null = out.report[0]?.missing ?? null;
  void why;
  return out;
}

export function deviceMisuse(d: Device): void {
  // @ts-expect-error isPrimary is a getter, not a method
  d.isPrimary();
}

// The IndexedDB store: a synchronous operation per transaction, its result after commit.
import { IndexedDbStore, StoreJournal, STORE_SCHEMA_VERSION, storeDatabaseName, type StoreJournalRows } from '../index.js';

export async function storeUse(): Promise<number> {
  const store: IndexedDbStore = await IndexedDbStore.open('types', { locks: null });
  const n: number = await store.transact((j: StoreJournal) => {
    j.begin();
    j.put(new Uint8Array(32), new Uint8Array([1]), j.syncedGeneration() + 1);
    j.commit();
    return 1;
  });
  const v: 1 = STORE_SCHEMA_VERSION;
  const db: string = storeDatabaseName(store.name);
  void v; void db;
  const rows: StoreJournalRows = StoreJournal.empty().takeJournal();
  void rows;
  // @ts-expect-error an operation must be synchronous
  await store.transact(async () => 1);
  store.close();
  return n;
}

// The store-backed Device: every Device method, async; getters sync.
import {
  createStoredDevice, openStoredDevice, importStoredDevice, storeFailedAttempts, generatePlatformKey,
  platformKeyFor, deletePlatformKey, defaultPasscodeCost, type StoredDevice, type StoreUnlock,
  type PasscodeCost, type DecryptResult,
} from '../index.js';

export async function storedDeviceUse(peer: Device): Promise<void> {
  const key: Uint8Array = await generatePlatformKey('types');
  const again: Uint8Array | null = await platformKeyFor('types');
  void again;
  const cost: PasscodeCost = defaultPasscodeCost();
  const byKey: StoreUnlock = { platformKey: key };
  const byPasscode: StoreUnlock = { passcode: 'pin', cost };
  const d: StoredDevice = await createStoredDevice('types', byKey, 'alice', 1_700_000_000, { durability: 'relaxed' });
  const id: string = d.userId;
  const stored: boolean = d.isStored;
  void id; void stored;
  await d.initiate('bob', peer.nextBundle());
  const c: Uint8Array = await d.encrypt('bob', new Uint8Array([1]));
  const r: DecryptResult = await d.decrypt('bob', peer.encrypt('alice', new Uint8Array([2])));
  const redelivered: boolean = r.redelivered;
  void c; void redelivered;
  const acked: boolean = await d.ack(r.digest);
  void acked;
  await d.changePasscode(byKey, byPasscode);
  await d.setAttemptLimit(5);
  const container: Uint8Array = await d.moveOut('transfer', cost);
  await d.close();
  const moved: StoredDevice = await importStoredDevice('types2', byKey, container, 'transfer');
  const n: number = await storeFailedAttempts('types');
  void n;
  const anchor: number | undefined = moved.storeGeneration;
  const o: StoredDevice = await openStoredDevice('types2', byKey, { minGeneration: anchor ?? 0 });
  // @ts-expect-error a stored device's methods return promises
  const sync: Uint8Array = o.encrypt('bob', new Uint8Array([1]));
  void sync;
  // @ts-expect-error an unlock is a key or a passcode, not both
  const both: StoreUnlock = { platformKey: key, passcode: 'x' };
  void both;
  const held: boolean = await deletePlatformKey('types');
  void held;
  moved.free();
  await o.close();
}
