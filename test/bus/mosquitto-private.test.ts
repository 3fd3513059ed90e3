import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { type PrivateMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { requirements } from '../helpers/requirements.js';
import { Inbox, transportContract, waitUntil } from './contract.js';

const req = requirements('bus: private Mosquitto (TLS, passwords, restarts)', [
  'cmd:mosquitto',
  'cmd:mosquitto_passwd',
  'cmd:openssl',
]);

describe.skipIf(req.skip)('private mosquitto', () => {
  let m: PrivateMosquitto;
  const open: MqttClientTransport[] = [];
  beforeAll(async () => {
    m = await startMosquitto();
  }, 30_000);
  afterAll(async () => {
    await Promise.all(open.map((t) => t.close()));
    await m?.stop();
  });

  transportContract('mosquitto (own instance, password)', async () => ({
    port: m.port,
    username: m.username,
    password: m.password,
    stop: async () => undefined,
  }));

  const tlsClient = (clientId: string, withCert: boolean) => {
    const t = new MqttClientTransport({
      url: `mqtts://127.0.0.1:${m.tlsPort}`,
      clientId,
      username: m.username,
      password: m.password,
      connectTimeoutMs: 5_000,
      tls: {
        ca: readFileSync(m.pki.ca, 'utf8'),
        ...(withCert
          ? { cert: readFileSync(m.pki.clientCert, 'utf8'), key: readFileSync(m.pki.clientKey, 'utf8') }
          : {}),
      },
    });
    open.push(t);
    return t;
  };

  it('mosquitto tls - a client with the CA, a client certificate and the password round-trips', async () => {
    const t = tlsClient('tls-cert', true);
    await t.connect();
    const inbox = new Inbox();
    await t.subscribe('rampart/tls/decisions', inbox.handler);
    await t.publish('rampart/tls/decisions', Buffer.from('over tls'));
    await inbox.waitFor(1);
    expect(inbox.got[0]!.payload).toBe('over tls');
  });

  it('mosquitto tls - without a client certificate the broker refuses the connection', async () => {
    await expect(tlsClient('tls-nocert', false).connect()).rejects.toMatchObject({ code: 'E_BUS' });
  });

  it('mosquitto - a wrong password is E_AUTH', async () => {
    const t = new MqttClientTransport({
      url: `mqtt://127.0.0.1:${m.port}`,
      clientId: 'bad-pw',
      username: m.username,
      password: 'wrong',
      connectTimeoutMs: 5_000,
    });
    open.push(t);
    await expect(t.connect()).rejects.toMatchObject({ code: 'E_AUTH' });
  });

  it('mosquitto restarted mid-stream: a persistent subscriber gets every acknowledged message', async () => {
    const mk = (clientId: string) => {
      const t = new MqttClientTransport({
        url: `mqtt://127.0.0.1:${m.port}`,
        clientId,
        username: m.username,
        password: m.password,
        minReconnectMs: 50,
        maxReconnectMs: 200,
        connectTimeoutMs: 5_000,
      });
      open.push(t);
      return t;
    };
    const pub = mk('rs-pub');
    const sub = mk('rs-sub');
    const statuses: string[] = [];
    sub.onStatus((s) => statuses.push(s));
    await Promise.all([pub.connect(), sub.connect()]);
    const inbox = new Inbox();
    await sub.subscribe('rampart/rs/decisions', inbox.handler);
    const acked: string[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 20) await m.restart();
      // Offline subscriber for a stretch: the broker queues for its persistent session.
      if (i === 30) await sub.close();
      for (;;) {
        const ok = await pub.publish('rampart/rs/decisions', Buffer.from(`m${i}`)).then(
          () => true,
          () => false,
        );
        if (ok) break;
        await waitUntil(() => pub.connected, 'publisher reconnected', 10_000);
      }
      acked.push(`m${i}`);
    }
    await m.restart();
    const back = mk('rs-sub');
    await back.connect();
    await back.subscribe('rampart/rs/decisions', inbox.handler);
    await waitUntil(() => new Set(inbox.got.map((x) => x.payload)).size === 60, 'all 60 delivered', 15_000);
    expect([...new Set(inbox.got.map((x) => x.payload))].sort()).toEqual([...acked].sort());
    expect(statuses).toContain('down');
  }, 60_000);
});
