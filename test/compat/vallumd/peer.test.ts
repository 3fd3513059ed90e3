import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Host, type Lan } from '../../helpers/netns.js';
import { requirements } from '../../helpers/requirements.js';
import {
  Broker,
  buildOriginalVallumd,
  CLI,
  cleanupDir,
  daemon,
  eventually,
  members,
  ORIGINAL,
  timeoutOf,
} from './harness.js';

const req = requirements('vallumd side by side', [
  'root',
  'netns',
  'cmd:ipset',
  'cmd:mosquitto',
  'cmd:mosquitto_pub',
  'cmd:mosquitto_sub',
  'cmd:cmake',
  'cmd:make',
  `file:${ORIGINAL}/CMakeLists.txt`,
  `file:${CLI}`,
]);

const TOPICS = ['test4', 'test6', 'tnet', 'test', 'missing'];
const CLIENT_ID = 'rampart-vallumd-t';
const b = (s: string) => Buffer.from(s, 'latin1');

/**
 * vallumd's own crash suite (pytest/test_mqtt.tavern.yml) with documentation addresses, then
 * hostile messages of our own. Every one must leave both daemons running with the same sets.
 */
const SEQUENCE: Array<[string, Buffer]> = [
  ['test4/del', b('192.0.2.10')], // delete from an empty set
  ['test6/del', b('2001:db8:6164::1')],
  ['test4/add', b('192.0.2.10')],
  ['test4/del', b('192.0.2.10')],
  ['test6/add', b('2001:db8:6164::1')],
  ['test6/del', b('2001:db8:6164::1')],
  ['test4/add', b('2001:db8:6164::1')], // wrong family
  ['test6/add', b('192.0.2.10')],
  ['test4/add', Buffer.alloc(4096, 'A')], // binary
  ['test/subtopic', b('test')],
  // Ours.
  ['test4/add', b('192.0.2.1\n')],
  ['test4/add', b('192.0.2.2 ')],
  ['test4/add', b(' 192.0.2.2')],
  ['test4/add', b('198.51.100.0/24')],
  ['test6/add', b('::ffff:192.0.2.3')],
  ['test6/add', b('2001:db8::1.2.3.4')],
  ['test4/add', b('localhost')],
  ['test4/add', b('010.0.2.1')],
  ['test4/add', b('192.0.2.1.5')],
  ['test4/add', b('0.0.0.0')], // the kernel refuses a null element
  ['test6/add', b('2001:db8::1%eth0')],
  ['test6/add', b('2001:db8::1::2')],
  ['test4/add', Buffer.from([0xff, 0xfe, 0x00, 0x41])],
  ['test4/add', b('')], // empty: ignored
  ['test4/ADD', b('192.0.2.4')], // case-sensitive: ignored
  ['test4/add/x', b('192.0.2.5')],
  ['test4/', b('192.0.2.6')],
  ['test4', b('192.0.2.7')], // bare topic: add
  ['test4/add', b('192.0.2.8')],
  ['test4/add', b('192.0.2.8')], // again: -exist
  ['test4/del', b('192.0.2.9')], // absent
  ['missing/add', b('192.0.2.11')], // no such set: logged, survived
  ['missing', b('192.0.2.11')],
  ['tnet/add', b('192.0.2.12')],
  ['tnet/add', b('198.51.100.7')],
  ['tnet/del', b('198.51.100.7')],
  ['test6/add', b('2001:DB8::A')],
  ['test6/add', b('2001:db8:0:0:0:0:0:b')],
  ['test6/add', b('::')],
  ['test4/add', b('203.0.113.300')],
  ['test/add', b('192.0.2.13')], // the "test" set is hash:ip,port: the element does not parse
];

describe.skipIf(req.skip)('vallumd: the original and rampart vallumd side by side', () => {
  let lan: Lan;
  let orig: Host;
  let ours: Host;
  let brokerHost: Host;
  let broker: Broker;
  let build: { bin: string; dir: string };
  let original: ReturnType<typeof daemon>;
  let rampart: ReturnType<typeof daemon>;
  let work: string;

  /** Waits for the broker's SUBACK log of the last topic for a client id. */
  const subscribed = async (clientId: string, from = 0) =>
    broker.until((l) => l.slice(from).includes(`${clientId} 2 missing/#`));
  // vallumd's id is HOSTNAME-PID (`ip netns exec` execs, so the pid is the child's).
  const originalId = () => `${hostname().slice(0, 15)}-${original.child.pid}`;

  const startOriginal = () =>
    daemon(orig, build.bin, ['-h', brokerHost.v4, ...TOPICS.flatMap((t) => ['-t', t])]);
  const startRampart = () =>
    daemon(ours, process.execPath, [
      CLI,
      'vallumd',
      '-h',
      brokerHost.v4,
      ...TOPICS.flatMap((t) => ['-t', t]),
      '--config',
      path.join(work, 'rampart.yaml'),
    ]);

  /** Publishes a marker and waits until both sets hold it: everything before it is applied. */
  let markers = 0;
  async function sync(hosts: Host[] = [orig, ours]): Promise<void> {
    const marker = `203.0.113.${++markers}`;
    await broker.publish('test4/add', b(marker));
    for (const h of hosts)
      await eventually(async () => (await members(h, 'test4')).includes(marker), `marker in ${h.ns}`);
    await broker.publish('test4/del', b(marker));
    for (const h of hosts)
      await eventually(async () => !(await members(h, 'test4')).includes(marker), `marker gone in ${h.ns}`);
  }

  beforeAll(async () => {
    build = await buildOriginalVallumd();
    work = build.dir;
    lan = await createLan(3, 'vlmd');
    [orig, ours, brokerHost] = lan.hosts as [Host, Host, Host];
    for (const h of [orig, ours]) {
      await h.exec('ipset', ['create', 'test4', 'hash:ip', 'family', 'inet', 'timeout', '600']);
      await h.exec('ipset', ['create', 'test6', 'hash:ip', 'family', 'inet6']);
      await h.exec('ipset', ['create', 'tnet', 'hash:net', 'family', 'inet']);
      await h.exec('ipset', ['create', 'test', 'hash:ip,port', 'family', 'inet']);
      // A short timeout that an add must refresh to the set's default (600).
      await h.exec('ipset', ['add', 'test4', '192.0.2.8', 'timeout', '30']);
    }
    await writeFile(path.join(work, 'rampart.yaml'), `vallumd:\n  clientId: ${CLIENT_ID}\n`);
    broker = new Broker(brokerHost, work);
    await broker.start();
    original = startOriginal();
    rampart = startRampart();
    await subscribed(originalId());
    await subscribed(CLIENT_ID);
  }, 240_000);

  afterAll(async () => {
    await original?.stop('SIGKILL');
    await rampart?.stop('SIGKILL');
    await broker?.stop();
    await lan?.destroy();
    await cleanupDir(build?.dir);
  });

  it('the same command lines give the same usage output and exit codes', async () => {
    const cases = [
      [],
      ['-V'],
      ['-t', 'x'],
      ['-h', 'h'],
      ['-h', 'h', '-t', 'x', '-Z'],
      ['-h', 'h', '-t', 'x', '-T'],
      ['-h', 'h', '-t', 'x', '-T', '-c', '/nonexistent/ca.pem'],
      ['-t'],
      ['-h', 'h', '-t'],
      ['-Z', '-V'],
      ['-hh', '-tx', '-Z'],
      ['-TV'],
      ['--help'],
      ['operand', '-V'],
      ['--', '-V'],
      ['-h', 'h', '-p'],
    ];
    const runIt = async (cmd: string, args: string[]) => {
      try {
        const stdout = await orig.exec(cmd, args, { timeoutMs: 10_000 });
        return { code: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    // getopt's complaints name the program and vallumd prints them twice (two getopt loops).
    const lines = (s: string, prog: string) => [
      ...new Set(
        s
          .split('\n')
          .filter(Boolean)
          .map((l) => l.replace(prog, 'P')),
      ),
    ];
    for (const args of cases) {
      const theirs = await runIt(build.bin, args);
      const mine = await runIt(process.execPath, [CLI, 'vallumd', ...args]);
      const what = `vallumd ${args.join(' ')}`;
      expect(mine.code, what).toBe(theirs.code);
      expect(mine.stdout.replace(/^vallumd-.*$/m, 'V'), what).toBe(
        theirs.stdout.replace(/^vallumd-.*$/m, 'V'),
      );
      expect(lines(mine.stderr, 'rampart vallumd'), what).toEqual(lines(theirs.stderr, build.bin));
    }
  });

  it('the same message sequence leaves the same set contents, and both survive', async () => {
    for (const [topic, payload] of SEQUENCE) await broker.publish(topic, payload);
    await sync();
    expect(original.alive()).toBe(true);
    expect(rampart.alive()).toBe(true);
    for (const set of ['test4', 'test6', 'tnet', 'test']) {
      const theirs = await members(orig, set);
      expect(await members(ours, set), `set ${set}`).toEqual(theirs);
    }
    expect(await members(ours, 'test4')).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(await members(ours, 'test6')).toEqual(['2001:db8::a', '2001:db8::b']);
    expect(await members(ours, 'tnet')).toEqual(['192.0.2.12']);
    // -exist: the second add refreshed 192.0.2.8 to the set's default timeout in both.
    for (const h of [orig, ours]) expect(await timeoutOf(h, 'test4', '192.0.2.8')).toBeGreaterThan(500);
    // Missing set and bad payloads: one clear line each in rampart's log.
    const log = rampart.output();
    expect(log).toMatch(/"set":"missing".*the set does not exist/);
    expect(log).toMatch(/"payload":"192.0.2.1\\\\n".*not a valid IP address/);
    expect(log).toMatch(/address does not match the family of the set/);
    expect(log).not.toMatch(/unexpected error|at .*\.js:\d+/);
  });

  it('differs on purpose: a NUL inside the payload is refused (vallumd reads it as a C string)', async () => {
    await broker.publish('test4/add', Buffer.concat([b('192.0.2.30'), Buffer.from([0]), b('junk')]));
    await sync();
    expect(await members(orig, 'test4')).toContain('192.0.2.30');
    expect(await members(ours, 'test4')).not.toContain('192.0.2.30');
  });

  it('what is published while both are down reaches rampart when it comes back, not vallumd', async () => {
    await original.stop();
    await rampart.stop();
    await broker.publish('test4/add', b('192.0.2.40'));
    await broker.publish('test6/add', b('2001:db8::40'));
    const from = broker.mark();
    original = startOriginal();
    rampart = startRampart();
    await subscribed(originalId(), from);
    await subscribed(CLIENT_ID, from);
    await sync();
    expect(await members(ours, 'test4')).toContain('192.0.2.40');
    expect(await members(ours, 'test6')).toContain('2001:db8::40');
    expect(await members(orig, 'test4')).not.toContain('192.0.2.40');
  });

  it('reconnects after the broker restarts, and leaves a retained last will when it dies', async () => {
    await broker.stop();
    const from = broker.mark();
    await broker.start();
    await subscribed(CLIENT_ID, from);
    await subscribed(originalId(), from);
    await broker.publish('tnet/add', b('198.51.100.9'));
    await sync();
    expect(await members(ours, 'tnet')).toContain('198.51.100.9');
    expect(await members(orig, 'tnet')).toContain('198.51.100.9');
    await rampart.stop('SIGKILL');
    // Only after the broker noticed may the retained will be rampart's (vallumd left one too).
    await broker.until((l) =>
      new RegExp(`(Client ${CLIENT_ID} closed its connection|Socket error on client ${CLIENT_ID})`).test(
        l.slice(from),
      ),
    );
    const will = await brokerHost.exec('mosquitto_sub', [
      '-h',
      brokerHost.v4,
      '-t',
      'vallumd/will',
      '-C',
      '1',
      '-W',
      '10',
      '-v',
    ]);
    expect(will.trim()).toBe(`vallumd/will ${CLIENT_ID}`);
  });
});
