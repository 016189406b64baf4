// The web device of the Kotlin <-> JS device-link test (bindings/kotlin ProvisioningTest):
// a child process that speaks one line per step on stdin/stdout, base64 for bytes.
//
//   node test/link-web-device.mjs <userId> <deviceId> <now>
//   -> offer <offer> <identityKey>          (the QR code and our identity)
//   <- open <message>                       (the phone's provisioning message)
//   -> ok <json payload, bytes in base64>   or   err <ErrorCode>
//   <- quit
// Not a node:test file: it is driven by the JVM test (and by hand).
import { createInterface } from 'node:readline';
import * as lib from '../node.js';

const [userId, deviceId, now] = process.argv.slice(2);
const b64 = (u8) => Buffer.from(u8).toString('base64');
const device = new lib.Device(userId, Number(now));
const secret = new lib.ProvisioningSecret(device.identityKey, deviceId, Number(now));
console.log(`offer ${b64(secret.offer)} ${b64(device.identityKey)}`);

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'quit') {
    rl.close();
    return;
  }
  if (cmd !== 'open') {
    console.log('err UnknownCommand');
    return;
  }
  try {
    const p = secret.open(new Uint8Array(Buffer.from(arg ?? '', 'base64')));
    console.log(`ok ${JSON.stringify({
      user: p.user,
      masterPublic: b64(p.masterPublic),
      endorsement: b64(p.endorsement),
      deviceList: b64(p.deviceList),
      used: secret.isUsed,
    })}`);
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
