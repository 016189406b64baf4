// The equivalent Signal flows with @signalapp/libsignal-client (native, Node only) and
// minimal in-memory stores: PQXDH (X25519 + Kyber/ML-KEM-1024 prekey) + Double Ratchet.
import * as S from '@signalapp/libsignal-client';

class Sessions extends S.SessionStore {
  m = new Map();
  async saveSession(a, r) { this.m.set(a.toString(), r); }
  async getSession(a) { return this.m.get(a.toString()) ?? null; }
  async getExistingSessions(as) { return as.map((a) => this.m.get(a.toString())); }
}
class Identities extends S.IdentityKeyStore {
  constructor(pair) { super(); this.pair = pair; this.m = new Map(); }
  async getIdentityKey() { return this.pair.privateKey; }
  async getLocalRegistrationId() { return 1; }
  async saveIdentity(a, k) { this.m.set(a.toString(), k); return S.IdentityChange.NewOrUnchanged; }
  async isTrustedIdentity() { return true; }
  async getIdentity(a) { return this.m.get(a.toString()) ?? null; }
}
class PreKeys extends S.PreKeyStore {
  m = new Map();
  async savePreKey(id, r) { this.m.set(id, r); }
  async getPreKey(id) { return this.m.get(id); }
  async removePreKey(id) { this.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  m = new Map();
  async saveSignedPreKey(id, r) { this.m.set(id, r); }
  async getSignedPreKey(id) { return this.m.get(id); }
}
class KyberPreKeys extends S.KyberPreKeyStore {
  m = new Map();
  async saveKyberPreKey(id, r) { this.m.set(id, r); }
  async getKyberPreKey(id) { return this.m.get(id); }
  async markKyberPreKeyUsed() {}
}

function party(name) {
  const pair = S.IdentityKeyPair.generate();
  return { addr: S.ProtocolAddress.new(name, 1), pair, sessions: new Sessions(), ids: new Identities(pair),
    pre: new PreKeys(), signed: new SignedPreKeys(), kyber: new KyberPreKeys() };
}

async function bundleOf(p) {
  const opk = S.PrivateKey.generate();
  const spk = S.PrivateKey.generate();
  const kem = S.KEMKeyPair.generate();
  const spkSig = p.pair.privateKey.sign(spk.getPublicKey().serialize());
  const kemSig = p.pair.privateKey.sign(kem.getPublicKey().serialize());
  await p.pre.savePreKey(1, S.PreKeyRecord.new(1, opk.getPublicKey(), opk));
  await p.signed.saveSignedPreKey(1, S.SignedPreKeyRecord.new(1, 0, spk.getPublicKey(), spk, spkSig));
  await p.kyber.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, 0, kem, kemSig));
  return () => S.PreKeyBundle.new(1, 1, 1, opk.getPublicKey(), 1, spk.getPublicKey(), spkSig,
    p.pair.publicKey, 1, kem.getPublicKey(), kemSig);
}

async function send(from, to, msg) {
  return S.signalEncrypt(msg, to.addr, from.addr, from.sessions, from.ids);
}
async function receive(to, from, ct) {
  if (ct.type() === S.CiphertextMessageType.PreKey) {
    return S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(ct.serialize()), from.addr, to.addr,
      to.sessions, to.ids, to.pre, to.signed, to.kyber);
  }
  return S.signalDecrypt(S.SignalMessage.deserialize(ct.serialize()), from.addr, to.addr, to.sessions, to.ids);
}

export async function benchSignal({ iters = 5000, setups = 50 } = {}) {
  const msg = new Uint8Array(100).fill(0x42);
  const alice = party('alice');
  const bob = party('bob');
  const mk = await bundleOf(bob);
  await S.processPreKeyBundle(mk(), bob.addr, alice.addr, alice.sessions, alice.ids);
  await receive(bob, alice, await send(alice, bob, msg));
  await receive(alice, bob, await send(bob, alice, msg));
  const round = async () => receive(bob, alice, await send(alice, bob, msg));
  for (let i = 0; i < iters / 5; i++) await round();
  let t = performance.now();
  for (let i = 0; i < iters; i++) await round();
  const steady = ((performance.now() - t) * 1000) / iters;

  let total = 0;
  for (let i = 0; i < setups + 5; i++) {
    const a = party('alice');
    const b = party('bob');
    const make = await bundleOf(b);
    t = performance.now();
    await S.processPreKeyBundle(make(), b.addr, a.addr, a.sessions, a.ids);
    await receive(b, a, await send(a, b, msg));
    if (i >= 5) total += performance.now() - t;
  }
  return { steady_us: steady, setup_us: (total * 1000) / setups };
}
