import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVallumdBridge, type VallumdBridge } from '../../../src/compat/vallumd/bridge.js';
import { silentLogger } from '../../../src/core/logger.js';
import { requirements } from '../../helpers/requirements.js';
import { startTestHub, type TestHub } from '../../hub/helpers.js';

const req = requirements('vallumd bridge on Mosquitto', [
  'tcp:1883',
  'cmd:mosquitto_pub',
  'cmd:mosquitto_sub',
]);

/** Runs `mosquitto_sub` on the test's own topics and collects `topic payload` lines. */
function subscriber(filter: string): {
  lines: string[];
  ready: Promise<void>;
  until(n: number): Promise<void>;
  stop(): void;
} {
  // Line-buffered: piped, mosquitto_sub would hold its output in a block buffer.
  const child: ChildProcess = spawn('stdbuf', [
    '-oL',
    'mosquitto_sub',
    '-h',
    '127.0.0.1',
    '-q',
    '2',
    '-t',
    filter,
    '-v',
    '-d',
  ]);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => {
    ready = r;
  });
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) {
      if (l.includes('received SUBACK')) ready();
      else if (!/^Client |^Subscribed/.test(l)) lines.push(l);
    }
    for (const w of waiters.splice(0)) w();
  });
  return {
    lines,
    ready: readyP,
    until: (n) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only got ${JSON.stringify(lines)}`)), 20_000);
        const check = () => {
          if (lines.length < n) return waiters.push(check);
          clearTimeout(t);
          resolve();
        };
        check();
      }),
    stop: () => child.kill(),
  };
}

async function pub(topic: string, payload: string): Promise<void> {
  const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-q', '2', '-t', topic, '-m', payload]);
  await new Promise((r) => p.once('exit', r));
}

describe.skipIf(req.skip)('vallumd bridge: a mixed fleet during migration', () => {
  const tag = randomBytes(4).toString('hex');
  const v4 = `bl4${tag}`;
  const v6 = `bl6${tag}`;
  const inTopic = `in${tag}`;
  let t: TestHub;
  let bridge: VallumdBridge;

  beforeAll(async () => {
    t = await startTestHub({ allowlist: ['203.0.113.0/24'] });
    bridge = await startVallumdBridge(
      t.hub,
      {
        url: 'mqtt://127.0.0.1:1883',
        clientId: `rb-${tag}`,
        publish: { v4, v6 },
        intake: [inTopic],
        node: 'old-vallumd',
      },
      silentLogger(),
    );
  });
  afterAll(async () => {
    await bridge?.close();
    await t?.close();
  });

  it('every fleet ban and unban goes out as SET/add and SET/del; ranges do not', async () => {
    const sub = subscriber(`${v4}/#`);
    const sub6 = subscriber(`${v6}/#`);
    try {
      await Promise.all([sub.ready, sub6.ready]);
      expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.61', duration: 600 })).status).toBe(
        201,
      );
      expect((await t.call('POST', '/v1/decisions', { target: '198.51.100.0/24' })).status).toBe(201);
      expect((await t.call('POST', '/v1/decisions', { target: '2001:db8::61' })).status).toBe(201);
      expect((await t.call('DELETE', '/v1/decisions/192.0.2.61')).status).toBeLessThan(300);
      await sub.until(2);
      await sub6.until(1);
      expect(sub.lines).toEqual([`${v4}/add 192.0.2.61`, `${v4}/del 192.0.2.61`]);
      expect(sub6.lines).toEqual([`${v6}/add 2001:db8::61`]);
    } finally {
      sub.stop();
      sub6.stop();
    }
  });

  it('vallumd messages become fleet decisions through the allowlist and policy; bad ones are refused', async () => {
    const decided: string[] = [];
    let first!: () => void;
    const got = new Promise<void>((r) => {
      first = r;
    });
    const off = t.hub.onDecision((d) => {
      decided.push(`${d.action} ${d.target} ${d.origin}`);
      first();
    });
    try {
      await pub(`${inTopic}/add`, '203.0.113.5'); // allowlisted: refused
      await pub(`${inTopic}/add`, '192.0.2.1\n'); // vallumd refuses it too
      await pub(`${inTopic}/del`, '192.0.2.70'); // unsigned unbans are not taken in
      await pub(`${inTopic}/add`, '192.0.2.70');
      // Messages are delivered in order, so the refused ones came (and went) before this one.
      await got;
      expect(decided).toEqual(['ban 192.0.2.70 old-vallumd']);
    } finally {
      off();
    }
  });
});
