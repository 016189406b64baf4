// The web device of the Kotlin <-> JS device-link test (bindings/kotlin ProvisioningTest):
// a child process that speaks one line per step on stdin/stdout, base64 for bytes. It is
// a real Device: it completes the link (Device.completeLink) and adopts its user's list.
//
//   node test/link-web-device.mjs <userId> <deviceId> <now>
//   -> offer <offer> <identityKey>          (the QR code and our identity)
//   <- open <message>                       (the phone's provisioning message)
//   -> ok <json {user, version, devices, deviceList, used, address}>   or   err <ErrorCode>
//   <- bundle                               -> bundle <prekey bundle>
//   <- decrypt <peer> <message>             -> plain <plaintext>   or   err <ErrorCode>
//   <- quit
// Not a node:test file: it is driven by the JVM test (and by hand).
import { createInterface } from 'node:readline';
import * as lib from '../node.js';

const [userId, deviceId, now] = process.argv.slice(2);
const b64 = (u8) => Buffer.from(u8).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s ?? '', 'base64'));
const device = new lib.Device(userId, Number(now));
const secret = new lib.ProvisioningSecret(device.identityKey, deviceId, Number(now));
console.log(`offer ${b64(secret.offer)} ${b64(device.identityKey)}`);

const commands = {
  open([message]) {
    const list = device.completeLink(secret, unb64(message));
    return `ok ${JSON.stringify({
      user: list.user,
      version: list.version,
      devices: list.devices.map((d) => d.deviceId),
      deviceList: b64(list.bytes),
      used: secret.isUsed,
      address: device.ownAddress,
    })}`;
  },
  bundle() {
    return `bundle ${b64(device.nextBundle())}`;
  },
  decrypt([peer, message]) {
    return `plain ${b64(device.decrypt(peer, unb64(message)).plaintext)}`;
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, ...args] = line.trim().split(' ');
  if (cmd === 'quit') {
    rl.close();
    return;
  }
  if (!Object.hasOwn(commands, cmd)) {
    console.log('err UnknownCommand');
    return;
  }
  try {
    console.log(commands[cmd](args));
  } catch (e) {
    console.log(`err ${lib.isGoChatError(e) ? e.code : `NotGoChatError:${e}`}`);
  }
});
// `quit` or the end of stdin.
rl.on('close', () => {
  secret.free();
  device.free();
  process.exit(0);
});
