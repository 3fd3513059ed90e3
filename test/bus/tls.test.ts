import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { requirements } from '../helpers/requirements.js';
import { Inbox } from './contract.js';

const req = requirements('bus: MQTT over TLS', ['cmd:openssl']);

describe.skipIf(req.skip)('MQTT over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-tls-'));
  let broker: EmbeddedMqttBroker;
  let cert: string;
  const clients: MqttClientTransport[] = [];

  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
      ].concat([
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=rampart-test',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]),
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    broker = new EmbeddedMqttBroker({
      port: 0,
      tls: { cert, key: readFileSync(join(dir, 'key.pem'), 'utf8') },
    });
    await broker.connect();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (id: string, ca?: string) => {
    const c = new MqttClientTransport({
      url: `mqtts://127.0.0.1:${broker.port}`,
      clientId: id,
      connectTimeoutMs: 5_000,
      ...(ca ? { tls: { ca } } : {}),
    });
    clients.push(c);
    return c;
  };

  it('tls - a client trusting the broker certificate round-trips a message', async () => {
    const c = client('tls-ok', cert);
    await c.connect();
    const inbox = new Inbox();
    await c.subscribe('rampart/tls/decisions', inbox.handler);
    await broker.publish('rampart/tls/decisions', Buffer.from('secure'));
    await inbox.waitFor(1);
    expect(inbox.got[0]!.payload).toBe('secure');
  });

  it('tls - an untrusted certificate is refused at once with a TLS error', async () => {
    const t0 = Date.now();
    await expect(client('tls-bad').connect()).rejects.toThrow(/TLS to MQTT broker .* failed/);
    expect(Date.now() - t0).toBeLessThan(4_000);
  });
});
