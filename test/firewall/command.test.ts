import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { CommandFirewall } from '../../src/firewall/command.js';
import { placeDataTags } from '../../src/firewall/command-tags.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { firewallContract } from './contract.js';

const DEBIAN_ACTION = '/etc/fail2ban/action.d/iptables-multiport.conf';

// Debian's own action file, unchanged, run inside the namespace: the contract's port is 8080.
firewallContract(
  'command (iptables-multiport.conf)',
  async (host) =>
    new CommandFirewall({
      file: DEBIAN_ACTION,
      init: { port: '8080', protocol: 'tcp' },
      prefix: ['ip', 'netns', 'exec', host.ns],
    }),
  { needs: [`file:${DEBIAN_ACTION}`, 'cmd:iptables', 'cmd:ip6tables'] },
);

describe('command action files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-cmd-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function action(name: string, definition: string): Promise<string> {
    const file = join(dir, `${name}.conf`);
    await writeFile(
      file,
      `[Definition]\n${definition}\n[Init]\nlog = ${dir}/${name}.log\nname = default\nextra = from-init\n[Init?family=inet6]\nextra = from-init6\n`,
    );
    return file;
  }
  const log = async (name: string) =>
    (await readFile(join(dir, `${name}.log`), 'utf8').catch(() => '')).trim().split('\n');

  it('command - actionstart runs once per family on demand, then ban/unban with the tags, and actionstop at shutdown', async () => {
    const file = await action(
      'basic',
      [
        'actionstart = echo start <name> <family> <extra> >> <log>',
        'actionban = echo ban <ip> <name> <bantime> <family> <extra> <port> >> <log>',
        'actionunban = echo unban <ip> >> <log>',
        'actionstop = echo stop <family> >> <log>',
        'actioncheck = test -f <log>',
      ].join('\n'),
    );
    const fw = new CommandFirewall({ file, init: { port: '22,80' } });
    await fw.init();
    await expect(fw.check()).rejects.toThrow(/basic\.conf: actioncheck \(inet4\) failed \(exit 1\)/);
    fw.add(parseTarget('192.0.2.1'), 600, 'web');
    fw.add(parseTarget('192.0.2.2'), 600, 'web');
    fw.add(parseTarget('2001:db8::1'), null, 'web');
    expect(await fw.commit()).toEqual({ added: 3, deleted: 0 });
    await expect(fw.check()).resolves.toBeUndefined();
    fw.delete(parseTarget('192.0.2.1'), 'web');
    expect(await fw.commit()).toEqual({ added: 0, deleted: 1 });
    expect((await fw.list()).map((e) => [e.target.text, e.timeout !== null && e.timeout > 590])).toEqual([
      ['192.0.2.2', true],
      ['2001:db8::1', false],
    ]);
    await fw.shutdown();
    expect(await log('basic')).toEqual([
      'start web inet4 from-init',
      'start web inet6 from-init6',
      'ban 192.0.2.1 web 600 inet4 from-init 22,80',
      'ban 192.0.2.2 web 600 inet4 from-init 22,80',
      'ban 2001:db8::1 web -1 inet6 from-init6 22,80',
      'unban 192.0.2.1',
      'stop inet4',
      'stop inet6',
    ]);
  });

  it('command - a tag value is data: $(...), quotes and ; in <name> are never run by the shell', async () => {
    const file = await action(
      'hostile',
      [
        'actionban = echo plain <name> >> <log>',
        "            echo 'single <name>' >> <log>",
        '            echo "double <name>" >> <log>',
        '            echo "$(echo sub <name>)" >> <log>',
      ].join('\n'),
    );
    for (const evil of [
      `$(touch ${dir}/pwned1)`,
      `'; touch ${dir}/pwned2; '`,
      `"; touch ${dir}/pwned3; "`,
      `\`touch ${dir}/pwned4\``,
    ]) {
      const fw = new CommandFirewall({ file, name: evil });
      fw.add(parseTarget('192.0.2.9'), 60);
      await fw.commit();
      await fw.shutdown();
    }
    for (let i = 1; i <= 4; i++) expect(existsSync(join(dir, `pwned${i}`)), `pwned${i}`).toBe(false);
    const lines = await log('hostile');
    expect(lines).toContain(`plain $(touch ${dir}/pwned1)`);
    expect(lines).toContain(`single '; touch ${dir}/pwned2; '`);
    expect(lines).toContain(`double "; touch ${dir}/pwned3; "`);
    expect(lines).toContain(`sub \`touch ${dir}/pwned4\``);
  });

  it('command - data tags are quoted for the context they sit in', () => {
    const m = (n: string) => `\u0000${n}\u0000`;
    const at = () => 1;
    expect(placeDataTags(`a ${m('ip')} b`, at)).toBe(`a "\${1}" b`);
    expect(placeDataTags(`'x${m('ip')}y'`, at)).toBe(`'x'"\${1}"'y'`);
    expect(placeDataTags(`"x${m('ip')}y"`, at)).toBe(`"x\${1}y"`);
    expect(placeDataTags(`"it's" ${m('ip')}`, at)).toBe(`"it's" "\${1}"`);
    expect(placeDataTags(`\\' ${m('ip')}`, at)).toBe(`\\' "\${1}"`);
  });

  it('command - a failing ban names the action, the address and its output; the others apply and it stays staged', async () => {
    const file = await action(
      'failing',
      'actionban = case <ip> in 192.0.2.66) echo refused by test >&2; exit 3;; esac\n            echo ban <ip> >> <log>',
    );
    const fw = new CommandFirewall({ file });
    fw.add(parseTarget('192.0.2.65'), 60);
    fw.add(parseTarget('192.0.2.66'), 60);
    fw.add(parseTarget('192.0.2.67'), 60);
    await expect(fw.commit()).rejects.toThrow(
      /actionban for 192\.0\.2\.66 \(set "blocklist"\) failed: exit 3: refused by test/,
    );
    expect(fw.pending()).toBe(1);
    expect(await log('failing')).toEqual(['ban 192.0.2.65', 'ban 192.0.2.67']);
    await fw.shutdown();
  });

  it('command - a batch larger than one argv string allows is split across shells, and every ban applies', async () => {
    const file = join(dir, 'long.conf');
    await writeFile(
      file,
      `[Definition]\nactionban = : <pad>\n            echo <ip> >> ${dir}/long.log\n[Init]\npad = ${'x'.repeat(4000)}\n`,
    );
    const fw = new CommandFirewall({ file });
    for (let i = 0; i < 100; i++) fw.add(parseTarget(`192.0.2.${i}`), 60);
    expect(await fw.commit()).toEqual({ added: 100, deleted: 0 });
    const lines = (await readFile(join(dir, 'long.log'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(100);
    expect(lines[99]).toBe('192.0.2.99');
    await fw.shutdown();
  });

  it('command - a missing or malformed action file is a config error naming it', async () => {
    await expect(new CommandFirewall({ file: join(dir, 'absent.conf') }).init()).rejects.toThrow(
      /absent\.conf.*not found/,
    );
    const bad = join(dir, 'bad.conf');
    await writeFile(bad, '[Definition]\nactionstart = true\n');
    await expect(new CommandFirewall({ file: bad }).init()).rejects.toThrow(
      /bad\.conf: \[Definition\] has no actionban/,
    );
  });
});

const req = requirements('command with root', ['root']);
describe.skipIf(req.skip)('command (root)', () => {
  it('command - a ban with a timeout is lifted by the backend when it expires', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rampart-cmdx-'));
    try {
      const file = join(dir, 'x.conf');
      await writeFile(
        file,
        `[Definition]\nactionban = echo ban <ip> >> ${dir}/log\nactionunban = echo unban <ip> >> ${dir}/log\n`,
      );
      const fw = new CommandFirewall({ file });
      fw.add(parseTarget('192.0.2.7'), 1);
      await fw.commit();
      await expect
        .poll(async () => readFile(join(dir, 'log'), 'utf8'), { timeout: 4000 })
        .toBe('ban 192.0.2.7\nunban 192.0.2.7\n');
      expect(await fw.list()).toEqual([]);
      await fw.shutdown();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const NFT_ACTION = '/etc/fail2ban/action.d/nftables.conf';
const nftReq = requirements('command with nftables.conf', ['netns', 'cmd:nft', `file:${NFT_ACTION}`]);

describe.skipIf(nftReq.skip)('command (nftables.conf)', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  beforeAll(async () => {
    lan = await createLan(2, 'cmdn');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, 8080);
  }, 30_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
  });

  it('command - Debian nftables.conf bans and unbans IPv4 and IPv6, and actionstop removes its table', async () => {
    const fw = new CommandFirewall({
      file: NFT_ACTION,
      init: { port: '8080' },
      prefix: ['ip', 'netns', 'exec', server.ns],
    });
    await fw.init();
    for (const [addr, dst] of [
      [client.v4, server.v4],
      [client.v6, server.v6],
    ] as const) {
      expect(await canConnect(client, dst, 8080)).toBe(true);
      fw.add(parseTarget(addr), 600, 'sshd');
      await fw.commit();
      expect(await canConnect(client, dst, 8080, 800)).toBe(false);
      fw.delete(parseTarget(addr), 'sshd');
      await fw.commit();
      expect(await canConnect(client, dst, 8080)).toBe(true);
    }
    fw.add(parseTarget(client.v4), 600, 'sshd');
    await fw.commit();
    // The action's own names, with <name> = the logical set.
    expect(await server.exec('nft', ['list', 'set', 'inet', 'f2b-table', 'addr-set-sshd'])).toContain(
      client.v4,
    );
    await fw.shutdown();
    expect(await server.exec('nft', ['list', 'tables'])).not.toContain('f2b-table');
    expect(await canConnect(client, server.v4, 8080)).toBe(true);
  }, 60_000);
});
