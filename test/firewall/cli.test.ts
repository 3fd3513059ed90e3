import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const CLI = path.resolve('dist/cli/main.js');
const req = requirements('rampart firewall CLI', ['root', 'netns', 'cmd:nft', `file:${CLI}`]);
const PORT = 8080;

describe.skipIf(req.skip)('rampart firewall CLI', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  let dir: string;
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('run npm run build first');
    lan = await createLan(2, 'fcli');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
    dir = await mkdtemp(path.join(tmpdir(), 'rampart-fwcli-'));
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the CLI inside the server's namespace; never throws, returns the exit code. */
  async function rampart(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const stdout = await server.exec(process.execPath, [CLI, 'firewall', ...args]);
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof e.code === 'number' ? e.code : -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      };
    }
  }
  const blocked = async (f: 4 | 6 = 4) =>
    !(await canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 800));
  // Patient: after an unban, IPv6 neighbour discovery (dropped during the ban) takes about 1 s.
  // A second try absorbs a slow neighbour discovery on a loaded machine; a ban never lets one through.
  const reachable = async (f: 4 | 6 = 4) =>
    (await canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 3000)) ||
    canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 3000);

  it('firewall add/list/del drive nftables: a ban drops the client, list --json shows remaining seconds', async () => {
    const add = await rampart(
      'add',
      '--backend',
      'nftables',
      '--for',
      '10m',
      client.v4,
      '2001:db8::/120',
      '--json',
    );
    expect(add).toMatchObject({ code: 0 });
    expect(JSON.parse(add.stdout)).toEqual({ backend: 'nftables', added: 2, deleted: 0 });
    expect(await blocked(4)).toBe(true);
    expect(await blocked(6)).toBe(true);
    const list = await rampart('list', '--backend', 'nftables', '--json');
    const rows = JSON.parse(list.stdout) as Array<{
      target: string;
      family: number;
      set: string;
      timeout: number;
    }>;
    const mine = rows.find((r) => r.target === client.v4);
    expect(mine).toMatchObject({ family: 4, set: 'blocklist' });
    expect(mine!.timeout).toBeGreaterThan(590);
    expect(mine!.timeout).toBeLessThanOrEqual(600);
    expect(rows.map((r) => r.target).sort()).toEqual([client.v4, '2001:db8::/120'].sort());
    expect((await rampart('del', '--backend', 'nftables', client.v4, '2001:db8::/120')).code).toBe(0);
    expect(await reachable(4)).toBe(true);
    expect(await reachable(6)).toBe(true);
  }, 30_000);

  it('firewall add refuses a bad or unbannable target with exit 2, naming it, and applies nothing', async () => {
    const bad = await rampart('add', '--backend', 'nftables', client.v4, '192.0.2.300');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('192.0.2.300');
    const lo = await rampart('add', '--backend', 'nftables', '127.0.0.1');
    expect(lo.code).toBe(2);
    expect(lo.stderr).toMatch(/127\.0\.0\.1.*loopback/);
    const file = path.join(dir, 'bad.txt');
    await writeFile(file, `# bans\n${client.v4} 1h\n\n2001:db8::zz\n`);
    const fromFile = await rampart('add', '--backend', 'nftables', '--from-file', file);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain(`${file}:4:`);
    expect(fromFile.stderr).toContain('2001:db8::zz');
    expect(await reachable()).toBe(true);
    const dur = await rampart('add', '--backend', 'nftables', '--for', 'soon', client.v4);
    expect(dur.code).toBe(2);
    expect(dur.stderr).toContain('soon');
  }, 30_000);

  it('firewall sync --from-file repairs an external flush and reports it; flush empties the sets', async () => {
    const file = path.join(dir, 'desired.txt');
    await writeFile(file, `${client.v4} 1h\n203.0.113.0/24\n`);
    expect((await rampart('sync', '--backend', 'nftables', '--from-file', file)).code).toBe(0);
    expect(await blocked()).toBe(true);
    await server.exec('nft', ['flush', 'set', 'inet', 'rampart', 'blocklist_v4']);
    expect(await reachable()).toBe(true);
    const r = await rampart('sync', '--backend', 'nftables', '--from-file', file, '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ strategy: 'diff', added: [client.v4], deleted: [] });
    expect(await blocked()).toBe(true);
    expect((await rampart('flush', '--backend', 'nftables')).code).toBe(0);
    expect(await reachable()).toBe(true);
    expect(JSON.parse((await rampart('list', '--backend', 'nftables', '--json')).stdout)).toEqual([]);
  }, 30_000);

  it('firewall with nft missing fails with exit 1 and one line naming the backend', async () => {
    const r = await rampart('add', '--backend', 'nftables', '--nft', '/nonexistent/nft', client.v4);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^rampart: nftables: cannot run "\/nonexistent\/nft"/);
  });

  it('firewall --backend dry-run applies nothing; an unknown backend lists the valid ones', async () => {
    expect((await rampart('add', '--backend', 'dry-run', client.v4)).code).toBe(0);
    expect(await reachable()).toBe(true);
    const r = await rampart('add', '--backend', 'pf', client.v4);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown backend "pf".*nftables.*dry-run/);
  }, 30_000);
});
