/**
 * The flooding node of the `flood` benchmark, in a process of its own so its work (building and
 * writing thousands of MQTT packets) is not counted as the hub's: `node flood-sender.js '<JSON>'`
 * with `{url, name, token, privateKeyPem, fleet, junk, signed, bursts}`. Publishes junk and
 * validly signed reports, interleaved, in bursts; prints one JSON line when every publish was
 * acknowledged.
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
  junk: number;
  signed: number;
  bursts: number;
};
const key = createPrivateKey(a.privateKeyPem);
const total = a.junk + a.signed;
const flood: Buffer[] = [];
let n = 0;
for (let i = 0; i < total; i++) {
  // `signed` of every `total` spread evenly among the junk.
  if (Math.floor(((i + 1) * a.signed) / total) > Math.floor((i * a.signed) / total)) {
    const target = `2001:db8:bad:${(n >> 8).toString(16)}:${(n & 0xff).toString(16)}::1`;
    n++;
    const body = { target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now() };
    flood.push(seal('report', body, a.name, key));
  } else {
    flood.push(i % 3 === 0 ? Buffer.alloc(64, i & 0xff) : Buffer.from(`{"v":1,"junk":${i}`));
  }
}
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
const t0 = performance.now();
const pubs: Array<Promise<void>> = [];
const per = Math.ceil(flood.length / a.bursts);
for (let k = 0; k < a.bursts; k++) {
  for (const bytes of flood.slice(k * per, (k + 1) * per)) pubs.push(client.publish(topic, bytes));
  await new Promise((r) => setImmediate(r));
}
const results = await Promise.allSettled(pubs);
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({ sent: flood.length, signed: n, refused: results.filter((r) => r.status === 'rejected').length, seconds })}\n`,
);
await client.close();
