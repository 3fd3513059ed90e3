import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget, type Target } from '../../src/core/address.js';
import { lineLogger } from '../../src/core/logger.js';
import { IpsetFirewall } from '../../src/firewall/ipset.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import type { Firewall } from '../../src/firewall/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('firewall: refused elements are set aside', [
  'root',
  'netns',
  'cmd:nft',
  'cmd:ipset',
  'cmd:iptables',
]);
const PORT = 8080;

/** A target whose text went bad: nothing in rampart makes one, which is why it must not poison a batch. */
const malformed = (): Target => ({ ...parseTarget('192.0.2.3'), text: '192.0.2.x' });

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = lineLogger((s: string) => lines.push(JSON.parse(s)));
  return { logger, refusals: () => lines.filter((l) => String(l.msg).startsWith('firewall refused')) };
}

describe.skipIf(req.skip)('firewall - one element the kernel refuses never holds a batch hostage', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  beforeAll(async () => {
    lan = await createLan(2, 'rfsd');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
    // The operator's set and rule, as a vallumd-style deployment has them.
    await server.exec('ipset', ['create', 'rf', 'hash:ip', 'timeout', '0']);
    await server.exec('iptables', ['-A', 'INPUT', '-m', 'set', '--match-set', 'rf', 'src', '-j', 'DROP']);
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
  });

  const blocked = async () => !(await canConnect(client, server.v4, PORT, 800));
  const reachable = async () =>
    (await canConnect(client, server.v4, PORT, 3000)) || canConnect(client, server.v4, PORT, 3000);
  const inNs = () => ['ip', 'netns', 'exec', server.ns];

  async function scenario(
    fw: Firewall,
    log: ReturnType<typeof capture>,
    bad: Array<{ target: Target; set?: string; expect: RegExp }>,
  ) {
    expect(await reachable()).toBe(true);
    fw.add(parseTarget('203.0.113.7'), 600);
    for (const b of bad) fw.add(b.target, 600, b.set);
    fw.add(parseTarget(client.v4), 600);
    const r = await fw.commit();
    // The good ones are in the kernel: the client's real TCP connection is dropped.
    expect(await blocked()).toBe(true);
    expect(r.added).toBe(2);
    expect(fw.pending()).toBe(0);
    expect(r.refused?.length).toBe(bad.length);
    for (const b of bad) {
      const got = r.refused!.find((x) => x.target.text === b.target.text);
      expect(got, `${b.target.text} refused`).toBeDefined();
      expect(got!.reason).toMatch(b.expect);
    }
    expect(fw.refusedTotal).toBe(bad.length);
    // One log line per refusal, naming backend, set and element.
    const lines = log.refusals();
    expect(lines).toHaveLength(bad.length);
    for (const l of lines)
      expect(l).toMatchObject({ backend: fw.name, set: expect.any(String), element: expect.any(String) });
    // Later commits are not blocked: an unban goes straight through.
    fw.delete(parseTarget(client.v4));
    const after = await fw.commit();
    expect(after.refused).toBeUndefined();
    expect(await reachable()).toBe(true);
  }

  for (const driver of ['library', 'spawn'] as const) {
    it(`nftables (${driver}) - a bad set name and a malformed element are set aside; the rest drops traffic`, async () => {
      const log = capture();
      const fw = new NftablesFirewall({ prefix: inNs(), table: `rf_${driver}`, driver, logger: log.logger });
      await fw.init();
      expect(fw.driver).toBe(driver);
      try {
        await scenario(fw, log, [
          { target: parseTarget('198.51.100.77'), set: '1x', expect: /"1x" is not a valid set name/ },
          { target: malformed(), expect: /blocklist_v4, element 192\.0\.2\.x/ },
        ]);
      } finally {
        await fw.destroy();
        await fw.shutdown();
      }
    }, 60_000);

    it(`ipset (${driver}) - a missing set and a malformed element are set aside; the rest drops traffic`, async () => {
      const log = capture();
      const fw = new IpsetFirewall({ prefix: inNs(), defaultSet: 'rf', driver, logger: log.logger });
      await fw.init();
      expect(fw.driver).toBe(driver);
      try {
        await scenario(fw, log, [
          { target: parseTarget('198.51.100.77'), set: 'nosuch', expect: /set "nosuch" does not exist/ },
          { target: malformed(), expect: /192\.0\.2\.x/ },
        ]);
      } finally {
        await server.exec('ipset', ['flush', 'rf']);
        await fw.shutdown();
      }
    }, 60_000);
  }
});
