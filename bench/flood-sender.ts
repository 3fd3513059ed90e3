/**
 * The flooding node of the `flood` benchmark, in a process of its own so its work (building and
 * writing MQTT packets) is not counted as the hub's: `node flood-sender.js '<JSON>'` with
 * `{url, name, token, privateKeyPem, fleet, signedEvery, burst, window}`. Publishes junk with a
 * validly signed report (a new target each) every `signedEvery` packets, `burst` packets per
 * event-loop turn, as fast as the broker takes them, keeping at most `window` publishes waiting
 * for their acknowledgement. Prints `{"ready":true}` once connected and, on SIGTERM, one JSON
 * line with what it sent and what the broker acknowledged.
 */
import { createPrivateKey } from 'node:crypto';
import { MqttClientTransport } from '../src/bus/mqtt-client.js';
import { topics } from '../src/bus/transport.js';
import { seal } from '../src/trust/envelope.js';

const a = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  name: string;
  token: string;
  privateKeyPem: string;
  fleet: string;
  signedEvery: number;
  burst: number;
  window: number;
};
const key = createPrivateKey(a.privateKeyPem);
const client = new MqttClientTransport({
  url: a.url,
  clientId: `flood-${a.name}-${process.pid}`,
  username: a.name,
  password: a.token,
  clean: true,
  connectTimeoutMs: 5000,
});
await client.connect();
const topic = topics.reports(a.fleet, a.name);
let sent = 0;
let signed = 0;
let acked = 0;
let refused = 0;
let wake: (() => void) | undefined;
const settle = (ok: boolean) => {
  if (ok) acked++;
  else refused++;
  if (wake && sent - acked - refused < a.window / 2) {
    wake();
    wake = undefined;
  }
};
const packet = (i: number): Buffer => {
  if (i % a.signedEvery === 0) {
    const n = signed++;
    const target = `2001:db8:bad:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`;
    return seal(
      'report',
      { target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now() },
      a.name,
      key,
    );
  }
  return i % 3 === 0 ? Buffer.alloc(64, i & 0xff) : Buffer.from(`{"v":1,"junk":${i}`);
};
process.once('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ sent, signed, acked, refused })}\n`);
  process.exit(0);
});
process.stdout.write('{"ready":true}\n');
for (;;) {
  for (let k = 0; k < a.burst; k++) {
    client.publish(topic, packet(sent++)).then(
      () => settle(true),
      () => settle(false),
    );
  }
  // Held by the hub (or a slow broker): wait for acknowledgements instead of piling up memory.
  if (sent - acked - refused >= a.window)
    await new Promise<void>((r) => {
      wake = r;
    });
  else await new Promise((r) => setImmediate(r));
}
