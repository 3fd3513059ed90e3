import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Request } from 'zeromq';
import type { MonitorConfig } from '../../../src/compat/fail2ban-zmq-tools/config.js';
import type { ClusterMessage } from '../../../src/compat/fail2ban-zmq-tools/frame.js';
import { ClusterMonitor } from '../../../src/compat/fail2ban-zmq-tools/monitor.js';
import { ClusterPublisher } from '../../../src/compat/fail2ban-zmq-tools/publisher.js';
import { ClusterSubscriber } from '../../../src/compat/fail2ban-zmq-tools/subscriber.js';
import { CompatMetrics } from '../../../src/compat/metrics.js';
import { silentLogger } from '../../../src/core/logger.js';
import { startFail2ban } from '../../helpers/fail2ban-server.js';
import { requirements } from '../../helpers/requirements.js';
import { waitFor } from '../../sources/helpers.js';
import { freePort, ORIGINALS, startOriginal } from './originals.js';

const run = promisify(execFile);
const log = silentLogger();
const TOKEN = 'tok';
const banLine = (word: string, ip: string, jail = 'sshd') =>
  `2026-12-03 10:16:16,342 fail2ban.actions        [1]: NOTICE  [${jail}] ${word} ${ip}\n`;

const req = requirements('fail2ban-zmq-tools against the original programs', [
  'cmd:/usr/bin/python3',
  `file:${ORIGINALS}/publisher.py`,
]);

describe.skipIf(req.skip)('fail2ban-zmq-tools interop with the original programs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-f2bzmq-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const sub = (tag: string) => mkdtempSync(join(dir, `${tag}-`));

  async function rampartPublisher(auth = true) {
    const metrics = new CompatMetrics();
    const p = new ClusterPublisher({
      config: { replyUrl: 'tcp://127.0.0.1:*', broadcastUrl: 'tcp://127.0.0.1:*', auth, token: TOKEN },
      log,
      metrics,
    });
    await p.start();
    return { p, metrics };
  }

  async function originalPublisher(d: string, auth = true) {
    const [rep, pub] = [await freePort(), await freePort()];
    const o = await startOriginal(d, 'publisher', {
      replybindurl: `tcp://127.0.0.1:${rep}`,
      broadcasterbindurl: `tcp://127.0.0.1:${pub}`,
      auth: auth ? 'true' : 'false',
      authtoken: TOKEN,
    });
    return { o, rep: `tcp://127.0.0.1:${rep}`, pub: `tcp://127.0.0.1:${pub}` };
  }

  it('original monitor → rampart publisher → original subscriber', async () => {
    const d = sub('chain1');
    const { p, metrics } = await rampartPublisher();
    const logfile = join(d, 'fail2ban.log');
    writeFileSync(logfile, '2026-12-03 10:16:16,175 fail2ban.server         [1]: INFO    Starting\n');
    const subscriber = await startOriginal(
      d,
      'subscriber',
      {
        zmqpublisherurl: p.broadcastEndpoint,
        subscriberaction: 'log',
      },
      { hostname: 'web9' },
    );
    const monitor = await startOriginal(
      d,
      'monitor',
      {
        zmqreplyserver: p.replyEndpoint,
        fail2banlogpath: logfile,
        auth: 'true',
        authtoken: TOKEN,
      },
      { hostname: 'web1' },
    );
    try {
      await p.subscribed();
      appendFileSync(logfile, banLine('Ban', '192.0.2.1'));
      appendFileSync(logfile, banLine('Unban', '192.0.2.1', 'nginx-http-auth'));
      const got = (m: string) =>
        subscriber.next((k, t) => k === 'log' && t.includes(`Got broadcast message: ${m}`));
      await got('web1|sshd|Ban|192.0.2.1');
      await got('web1|nginx-http-auth|Unban|192.0.2.1');
      // IPv6: rampart's publisher takes it; the original subscriber still refuses it (documented).
      appendFileSync(logfile, banLine('Ban', '2001:db8::7'));
      await subscriber.next((k, t) => k === 'log' && t.includes('Invalid attacker IP'));
      const handled = await metrics.handled.get();
      expect(handled.values.find((v) => v.labels.what === 'published')?.value).toBe(3);
      expect(subscriber.events.filter((e) => e[0] === 'crash')).toEqual([]);
    } finally {
      await monitor.stop();
      await subscriber.stop();
      await p.close();
    }
  });

  it('rampart monitor → original publisher, with the publisher down at first: spooled, resent in order after a monitor restart', async () => {
    const d = sub('chain2');
    const port = await freePort();
    const logfile = join(d, 'fail2ban.log');
    writeFileSync(logfile, '');
    const config: MonitorConfig = {
      replyServer: `tcp://127.0.0.1:${port}`,
      logPath: logfile,
      auth: true,
      token: TOKEN,
    };
    const opts = {
      config,
      stateDir: join(d, 'state'),
      log,
      hostname: 'web2',
      answerTimeoutMs: 300,
      maxBackoffMs: 300,
    };
    const first = new ClusterMonitor({ ...opts, metrics: new CompatMetrics() });
    await first.start();
    appendFileSync(logfile, banLine('Ban', '192.0.2.2'));
    appendFileSync(logfile, banLine('Restore Ban', '198.51.100.2'));
    appendFileSync(logfile, banLine('Ban', '192.0.2.99', 'fail2bancluster')); // never forwarded
    appendFileSync(logfile, banLine('Unban', '192.0.2.2'));
    await waitFor(() => first.spool.size === 3, 'three frames in the spool');
    await first.close();

    const metrics = new CompatMetrics();
    const second = new ClusterMonitor({ ...opts, metrics });
    await second.start();
    const publisher = await startOriginal(d, 'publisher', {
      replybindurl: config.replyServer,
      broadcasterbindurl: `tcp://127.0.0.1:${await freePort()}`,
      auth: 'true',
      authtoken: TOKEN,
    });
    try {
      await second.drained();
      // The original logs after it answered: wait for its third line.
      await publisher.next((k, t) => k === 'log' && /Unban for 192\.0\.2\.2/.test(t));
      const propagated = publisher.events.filter((e) => e[0] === 'log' && e[1].includes('Propagating'));
      expect(propagated.map((e) => e[1].replace(/\s+/g, ' ').replace(/^.*Propagating /, ''))).toEqual([
        'Ban for 192.0.2.2/sshd from web2',
        'Ban for 198.51.100.2/sshd from web2',
        'Unban for 192.0.2.2/sshd from web2',
      ]);
      const delivered = (await metrics.handled.get()).values.find((v) => v.labels.what === 'delivered');
      expect(delivered?.value).toBe(3);
    } finally {
      await second.close();
      await publisher.stop();
    }
  });

  it('rampart monitor with a wrong token: the original publisher answers NAK, the monitor logs, counts and goes on', async () => {
    const d = sub('nak');
    const { o, rep } = await originalPublisher(d);
    const logfile = join(d, 'fail2ban.log');
    writeFileSync(logfile, '');
    const metrics = new CompatMetrics();
    const verdicts: string[] = [];
    const m = new ClusterMonitor({
      config: { replyServer: rep, logPath: logfile, auth: true, token: 'wrong' },
      stateDir: join(d, 'state'),
      log,
      metrics,
      hostname: 'web3',
      onSettled: (_f, v) => verdicts.push(v),
    });
    await m.start();
    try {
      appendFileSync(logfile, banLine('Ban', '192.0.2.3'));
      await waitFor(() => verdicts.length === 1, 'the publisher’s answer');
      expect(verdicts).toEqual(['nak']);
      expect(await metrics.droppedCount('f2b-zmq', 'nak')).toBe(1);
      expect(m.spool.size).toBe(0);
    } finally {
      await m.close();
      await o.stop();
    }
  });

  describe('original publisher → rampart subscriber', () => {
    const f2b = requirements('f2b-zmq subscriber → real fail2ban', ['cmd:fail2ban-server']);
    it.skipIf(f2b.skip)('subscriberaction = fail2banclient bans and unbans in a real fail2ban', async () => {
      const d = sub('sub');
      const { o, rep, pub } = await originalPublisher(d);
      const server = await startFail2ban('sshd', () => ({ ban: 'true', unban: 'true' }), 600);
      const seen: Array<[ClusterMessage, string]> = [];
      let heard: () => void = () => {};
      const heardOwn = new Promise<void>((r) => {
        heard = r;
      });
      const s = new ClusterSubscriber({
        config: { publisherUrl: pub, action: 'fail2banclient', bantime: 600 },
        log,
        metrics: new CompatMetrics(),
        hostname: 'web4',
        fail2banSocket: server.socket,
        onMessage: (m, outcome) => {
          seen.push([m, outcome]);
          if (outcome === 'own') heard();
        },
      });
      await s.start();
      const client = new Request({ receiveTimeout: 5000, linger: 0 });
      client.connect(rep);
      const send = async (frame: string) => {
        await client.send(frame);
        return (await client.receive())[0]!.toString();
      };
      try {
        // PUB/SUB drops what is sent before the subscription arrives: our own host name is a
        // harmless probe (the subscriber ignores it) to send until the subscriber hears one.
        for (let i = 0; i < 200 && !seen.some(([, oc]) => oc === 'own'); i++) {
          await send(`${TOKEN}|web4|sshd|Ban|192.0.2.250`);
          await Promise.race([heardOwn, new Promise((r) => setTimeout(r, 25))]);
        }
        expect(seen.some(([, oc]) => oc === 'own')).toBe(true);
        expect(await send(`${TOKEN}|web1|sshd|Ban|192.0.2.4`)).toBe('web1|sshd|Ban|192.0.2.4');
        expect(await send(`${TOKEN}|web1|sshd|Ban|192.0.2.5`)).toBe('web1|sshd|Ban|192.0.2.5');
        expect(await send(`${TOKEN}|web1|sshd|unban|192.0.2.4`)).toBe('web1|sshd|unban|192.0.2.4');
        await waitFor(() => seen.filter(([, oc]) => oc === 'applied').length === 3, 'three applied');
        const { stdout } = await run('fail2ban-client', ['-s', server.socket, 'get', 'sshd', 'banip']);
        expect(stdout.trim().split(/\s+/)).toEqual(['192.0.2.5']);
      } finally {
        client.close();
        await s.close();
        await o.stop();
        await server.stop();
      }
    });
  });
});
