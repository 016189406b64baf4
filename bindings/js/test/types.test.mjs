// Node only: keeps the hand-written index.d.ts in step with the runtime package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as lib from '@gochat/e2ee';

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');

test('types: the ErrorCode union equals errorCodes(), in order', () => {
  const union = dts.match(/export type ErrorCode =([^;]*);/)[1];
  const declared = [...union.matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]);
  assert.deepEqual(declared, lib.errorCodes());
});

test('types: every runtime export is declared in index.d.ts', () => {
  for (const name of Object.keys(lib)) {
    assert.match(dts, new RegExp(`export (declare )?(const|function|class|let) ${name}\\b`), `${name} not declared`);
  }
});

// The members declared in `export declare class <cls> { ... }`, with their parameter counts.
// Members of `export declare class <cls> {` and of any `export interface <cls> {` merged
// into it (index.d.ts declares the device-list methods that way).
function declaredMembers(src, cls) {
  const members = new Map();
  for (const head of [`export declare class ${cls} {`, `export interface ${cls} {`]) {
    const at = src.indexOf(head);
    if (at < 0) continue;
    const body = src.slice(at);
    const end = body.indexOf('\n}\n');
    for (const m of body.slice(0, end).matchAll(/^  (?:static )?(?:readonly )?([A-Za-z]+)(\??)(\(([^)]*)\))?/gm)) {
      const params = m[3] === undefined ? null : m[4].trim() === '' ? 0 : m[4].split(',').length;
      members.set(m[1], params);
    }
  }
  return members;
}
const declaredDeviceMembers = (src) => declaredMembers(src, 'Device');
// The same for the wasm-bindgen glue's `export class <cls> {` (4-space indented members).
const generatedMembers = (glue, cls) =>
  declaredMembers(glue.replace(`export class ${cls} {`, `export declare class ${cls} {`).replace(/^    /gm, '  '), cls);

// The field names of `export interface Name [extends Base] { ... }`, with the base's fields.
function interfaceFields(name) {
  const m = dts.match(new RegExp(`export interface ${name}(?: extends (\\w+))? \\{([^}]*)\\}`));
  assert.ok(m, `interface ${name} declared`);
  const own = [...m[2].matchAll(/^\s+([A-Za-z]+)\??:/gm)].map((x) => x[1]);
  return [...(m[1] ? interfaceFields(m[1]) : []), ...own].sort();
}
const keysOf = (o) => Object.keys(o).sort();

test('types: every Device method of the wasm glue is declared, with the same number of parameters', () => {
  const glue = readFileSync(new URL('../pkg/gochat_e2ee_wasm.d.ts', import.meta.url), 'utf8');
  const declared = declaredDeviceMembers(dts);
  const generated = declaredDeviceMembers(glue.replace('export class Device {', 'export declare class Device {').replace(/^    /gm, '  '));
  assert.ok(generated.size > 50, `parsed the glue (${generated.size} members)`);
  for (const [name, params] of generated) {
    if (name === 'constructor') continue;
    assert.ok(declared.has(name), `Device.${name} not declared in index.d.ts`);
    assert.equal(declared.get(name), params, `Device.${name}: parameter count`);
  }
  for (const name of Object.getOwnPropertyNames(lib.Device.prototype)) {
    if (name !== 'constructor' && name !== '__destroy_into_raw') assert.ok(declared.has(name), `Device.${name} not declared`);
  }
});

test('types: group and channel results have exactly the declared fields', () => {
  const NOW = 1_700_000_000;
  const enc = new TextEncoder();
  const ana = new lib.Device('ana', NOW);
  const ben = new lib.Device('ben', NOW);
  ana.initiate('ben', ben.nextBundle());
  ben.decrypt('ana', ana.encrypt('ben', enc.encode('hi')));
  const cai = new lib.Device('cai', NOW); // no session: withheld
  const c = ana.groupCreate([{ name: 'ben', identityKey: ben.identityKey }, { name: 'cai', identityKey: cai.identityKey }], NOW);
  assert.deepEqual(keysOf(c), interfaceFields('GroupChange'));
  assert.deepEqual(keysOf(c.change), interfaceFields('MembershipChange'));
  assert.deepEqual(keysOf(c.outgoing[0]), interfaceFields('Outgoing'));
  assert.deepEqual(keysOf(c.withheld[0]), interfaceFields('Withheld'));
  assert.match(dts, new RegExp(`export type WithheldReason =[^;]*'${c.withheld[0].reason}'`));
  const j = ben.groupJoin(c.welcome, NOW);
  const got = ben.groupReceive('ana', c.outgoing[0].message);
  assert.deepEqual(keysOf(got), interfaceFields('SenderKeyReceived'));
  ana.receiveControl('ben', j.outgoing.find((o) => o.peer === 'ana').message);
  const sent = ana.groupEncrypt(c.groupId, enc.encode('x'), NOW);
  assert.deepEqual(keysOf(sent), interfaceFields('GroupSent'));
  assert.deepEqual(keysOf(ben.groupDecrypt('ana', sent.message)), interfaceFields('GroupPlaintext'));
  const info = ana.groupInfo(c.groupId);
  assert.deepEqual(keysOf(info), interfaceFields('GroupInfo'));
  assert.deepEqual(keysOf(info.members[0]), interfaceFields('GroupMemberInfo'));
  assert.deepEqual(keysOf(info.rotationPolicy), interfaceFields('RotationPolicy'));
  assert.deepEqual(keysOf(ana.groupResendKey(c.groupId, 'ben')), interfaceFields('FanOut'));

  const id = ana.channelCreate('restricted');
  const key = ana.channelPublicKey(id);
  ben.channelSubscribe(id, key, 'restricted');
  const rk = ana.channelRotateContentKey(id, ['ben']);
  assert.deepEqual(keysOf(rk), interfaceFields('ChannelRekey'));
  const ck = ben.receiveControl('ana', rk.outgoing[0].message);
  assert.deepEqual(keysOf(ck), interfaceFields('ChannelKeyReceived'));
  const r = ben.channelReceive(ana.channelAnnounce(id, 'json', enc.encode('{}'), NOW), NOW);
  assert.deepEqual(keysOf(r), ['announcement', 'digest', 'kind', 'redelivered']);
  assert.match(dts, /\) & \{\n[^}]*digest: Uint8Array;\n[^}]*redelivered: boolean;\n\};/);
  assert.deepEqual(keysOf(r.announcement), interfaceFields('Announcement'));
  assert.match(dts, /\| \{ kind: 'announcement'; announcement: Announcement \}/);
  const rot = ben.channelReceive(ana.channelRotateSigningKey(id, NOW), NOW);
  assert.deepEqual(keysOf(rot), ['digest', 'kind', 'new', 'old', 'redelivered', 'seq']);
  assert.match(dts, /\| \{ kind: 'keyRotated'; old: Uint8Array; new: Uint8Array; seq: number \}/);
  const pub = ana.channelCreate('public');
  const post = ana.channelAnnounce(pub, 'text', enc.encode('t'), NOW);
  assert.deepEqual(keysOf(lib.verifyAnnouncement(post, ana.channelPublicKey(pub))), interfaceFields('Announcement'));
  for (const t of ['text', 'json', 'attachmentPointer']) assert.match(dts, new RegExp(`export type ContentType =[^;]*'${t}'`));
  for (const k of ['public', 'restricted']) assert.match(dts, new RegExp(`export type ChannelKind =[^;]*'${k}'`));
  ana.free(); ben.free(); cai.free();
});

test('types: every attachment class member of the wasm glue is declared, with the same number of parameters', () => {
  const glue = readFileSync(new URL('../pkg/gochat_e2ee_wasm.d.ts', import.meta.url), 'utf8');
  for (const cls of ['AttachmentEncryptor', 'AttachmentDecryptor']) {
    const declared = declaredMembers(dts, cls);
    const generated = generatedMembers(glue, cls);
    assert.ok(generated.size >= 4, `parsed the glue's ${cls} (${generated.size} members)`);
    for (const [name, params] of generated) {
      assert.ok(declared.has(name), `${cls}.${name} not declared in index.d.ts`);
      assert.equal(declared.get(name), params, `${cls}.${name}: parameter count`);
    }
    for (const name of Object.getOwnPropertyNames(lib[cls].prototype)) {
      if (name !== 'constructor' && name !== '__destroy_into_raw') assert.ok(declared.has(name), `${cls}.${name} not declared`);
    }
  }
  for (const f of ['attachmentEncrypt', 'attachmentDecrypt', 'attachmentDecryptSegment', 'attachmentHeaderInfo',
    'attachmentSegmentRange', 'attachmentSegmentForOffset', 'attachmentPointerInfo', 'attachmentPaddedLen']) {
    const g = glue.match(new RegExp(`export function ${f}\\(([^)]*)\\)`));
    const d = dts.match(new RegExp(`export declare function ${f}\\(([^)]*)\\)`));
    assert.ok(g && d, `${f} in the glue and in index.d.ts`);
    assert.equal(d[1].split(',').length, g[1].split(',').length, `${f}: parameter count`);
  }
});

test('types: every StoreJournal member of the wasm glue is declared, with the same number of parameters', () => {
  const glue = readFileSync(new URL('../pkg/gochat_e2ee_wasm.d.ts', import.meta.url), 'utf8');
  const declared = declaredMembers(dts, 'StoreJournal');
  const generated = generatedMembers(glue, 'StoreJournal');
  assert.ok(generated.size >= 12, `parsed the glue's StoreJournal (${generated.size} members)`);
  for (const [name, params] of generated) {
    assert.ok(declared.has(name), `StoreJournal.${name} not declared in index.d.ts`);
    assert.equal(declared.get(name), params, `StoreJournal.${name}: parameter count`);
  }
  for (const name of Object.getOwnPropertyNames(lib.IndexedDbStore.prototype)) {
    if (name !== 'constructor' && !name.startsWith('_')) assert.ok(declaredMembers(dts, 'IndexedDbStore').has(name), `IndexedDbStore.${name} not declared`);
  }
});

test('types: attachment results have exactly the declared fields', () => {
  const data = new Uint8Array(70_000).fill(7);
  const e = lib.attachmentEncrypt(data, 'image/png', 'a.png');
  assert.deepEqual(keysOf(e), interfaceFields('EncryptedAttachment'));
  const header = e.blob.subarray(0, 53);
  assert.deepEqual(keysOf(lib.attachmentHeaderInfo(header)), interfaceFields('AttachmentHeaderInfo'));
  assert.deepEqual(keysOf(lib.attachmentSegmentRange(header, 0)), interfaceFields('SegmentRange'));
  assert.deepEqual(keysOf(lib.attachmentPointerInfo(e.pointer)), interfaceFields('AttachmentPointerInfo'));
  const enc = new lib.AttachmentEncryptor(0, 'text/plain');
  assert.deepEqual(keysOf(enc.finishStep()), interfaceFields('AttachmentStep'));
  enc.free();
  const limits = keysOf(lib.limits());
  assert.deepEqual(limits, interfaceFields('Limits'));
});

test('types: index.d.ts type-checks real use under strict TypeScript (test/types-check.ts)', async () => {
  const { default: ts } = await import('typescript');
  const file = new URL('./types-check.ts', import.meta.url).pathname;
  const program = ts.createProgram([file], {
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.esnext.disposable.d.ts'],
    types: [],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n',
  });
  assert.equal(diagnostics.length, 0, text);
  assert.ok(program.getSourceFiles().some((f) => f.fileName.endsWith('bindings/js/index.d.ts')), 'resolved index.d.ts');
});

test('types: device-list and link results have exactly the declared fields', () => {
  const NOW = 1_700_000_000;
  const u = 'bob@mof.gov.my';
  const phone = new lib.Device(`${u}/phone`, NOW);
  const laptop = new lib.Device(`${u}/laptop`, NOW);
  const web = new lib.Device(u, NOW);
  const ana = new lib.Device('ana@mof.gov.my/phone', NOW);
  const list = lib.decodeDeviceList(phone.createMasterKey('phone', NOW));
  assert.deepEqual(keysOf(list), interfaceFields('DeviceListInfo'));
  assert.deepEqual(keysOf(list.devices[0]), interfaceFields('DeviceEntry'));
  const e = phone.endorseDevice('laptop', laptop.identityKey, NOW);
  assert.deepEqual(keysOf(e), interfaceFields('EndorsedDevice'));
  assert.deepEqual(keysOf(lib.decodeDeviceEndorsement(e.endorsement)), interfaceFields('DeviceEndorsementInfo'));
  const up = ana.processDeviceList(e.deviceList, NOW);
  assert.deepEqual(keysOf(up), interfaceFields('DeviceListUpdate'));
  const out = ana.encryptForUser(u, new Uint8Array(1), [{ address: `${u}/phone`, bundle: phone.nextBundle() }]);
  assert.deepEqual(keysOf(out), interfaceFields('UserFanOut'));
  assert.deepEqual(keysOf(out.report[0]), interfaceFields('DeviceReport'));
  const secret = new lib.ProvisioningSecret(web.identityKey, 'web-1', NOW);
  const link = phone.linkDevice(secret.offer, NOW);
  assert.deepEqual(keysOf(link), interfaceFields('LinkOutcome'));
  assert.deepEqual(keysOf(web.completeLink(secret, link.message)), interfaceFields('DeviceListInfo'));
  assert.deepEqual(keysOf(phone.removeLinkedDevice('laptop', NOW)), interfaceFields('DeviceRemoval'));
  for (const x of [phone, laptop, web, ana, secret]) x.free();
});
