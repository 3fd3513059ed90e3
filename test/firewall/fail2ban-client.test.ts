import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { Fail2banClientFirewall, parseBanipWithTime } from '../../src/firewall/fail2ban-client.js';
import { type Fail2banServer, startFail2ban } from '../helpers/fail2ban-server.js';
import { requirements } from '../helpers/requirements.js';
import { firewallContract } from './contract.js';

const run = promisify(execFile);

const servers: Fail2banServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

// fail2ban's own actions do the dropping inside the namespace; bans are permanent (bantime -1)
// because banip takes no per-address duration.
const IPTABLES_ACTION = {
  ban: 'case "<ip>" in *:*) ip6tables -I INPUT -s <ip> -j DROP;; *) iptables -I INPUT -s <ip> -j DROP;; esac',
  unban:
    'case "<ip>" in *:*) ip6tables -D INPUT -s <ip> -j DROP;; *) iptables -D INPUT -s <ip> -j DROP;; esac',
};

firewallContract(
  'fail2ban-client',
  async (host) => {
    const server = await startFail2ban('blocklist', () => IPTABLES_ACTION, -1, [
      'ip',
      'netns',
      'exec',
      host.ns,
    ]);
    servers.push(server);
    return new Fail2banClientFirewall({ socket: server.socket });
  },
  { timeouts: false, needs: ['cmd:fail2ban-server', 'cmd:fail2ban-client', 'cmd:iptables', 'cmd:ip6tables'] },
);

describe('fail2ban-client parsing', () => {
  it('fail2ban-client - banip --with-time lines give the remaining time, -1 is permanent', () => {
    const now = new Date('2026-01-01T12:00:00').getTime();
    const got = parseBanipWithTime(
      '192.0.2.1 \t2026-01-01 11:59:00 + 600 = 2026-01-01 12:09:00\n2001:db8::/120 \t2026-01-01 11:00:00 + -1 = 9999-12-31 23:59:59\n',
      'web',
      now,
    );
    expect(got.map((e) => [e.target.text, e.set, e.timeout])).toEqual([
      ['192.0.2.1', 'web', 540],
      ['2001:db8::/120', 'web', null],
    ]);
  });
});

const req = requirements('fail2ban-client backend', ['cmd:fail2ban-server', 'cmd:fail2ban-client']);

describe.skipIf(req.skip)('fail2ban-client backend', () => {
  let server: Fail2banServer;
  beforeAll(async () => {
    // A harmless action: it only records what fail2ban asked it to do.
    server = await startFail2ban(
      'sshd-test',
      (dir) => ({ ban: `echo ban <ip> >> ${dir}/record`, unban: `echo unban <ip> >> ${dir}/record` }),
      600,
    );
    servers.push(server);
  }, 30_000);

  it('fail2ban-client - a batch of bans lands in the jail in one call, status shows them, unban removes them', async () => {
    const fw = new Fail2banClientFirewall({ socket: server.socket, jail: 'sshd-test', chunk: 2 });
    await fw.init();
    for (const a of ['192.0.2.1', '192.0.2.2', '2001:db8::9']) fw.add(parseTarget(a), 600);
    expect(await fw.commit()).toEqual({ added: 3, deleted: 0 });
    const { stdout } = await run('fail2ban-client', ['-s', server.socket, 'status', 'sshd-test']);
    expect(stdout).toMatch(/Banned IP list:\s+192\.0\.2\.1 192\.0\.2\.2 2001:db8::9/);
    const listed = await fw.list();
    expect(listed.map((e) => e.target.text).sort()).toEqual(['192.0.2.1', '192.0.2.2', '2001:db8::9']);
    expect(listed.every((e) => e.timeout! > 590 && e.timeout! <= 600)).toBe(true);
    fw.delete(parseTarget('192.0.2.1'));
    fw.delete(parseTarget('2001:db8::9'));
    expect(await fw.commit()).toEqual({ added: 0, deleted: 2 });
    expect((await fw.list()).map((e) => e.target.text)).toEqual(['192.0.2.2']);
    // fail2ban really ran its action for each (its actions run in a thread: allow a moment).
    await expect
      .poll(async () =>
        (await readFile(join(server.dir, 'record'), 'utf8').catch(() => '')).split('\n').sort().join(' '),
      )
      .toBe(' ban 192.0.2.1 ban 192.0.2.2 ban 2001:db8::9 unban 192.0.2.1 unban 2001:db8::9');
  }, 30_000);

  it('fail2ban-client - an unknown jail and an unreachable socket are clear errors, and the batch stays staged', async () => {
    const fw = new Fail2banClientFirewall({ socket: server.socket, jails: { web: 'no-such-jail' } });
    fw.add(parseTarget('192.0.2.50'), 60, 'web');
    await expect(fw.commit()).rejects.toThrow(
      /fail2ban-client: banip 192\.0\.2\.50 in jail "no-such-jail": no such jail/,
    );
    expect(fw.pending()).toBe(1);
    const gone = new Fail2banClientFirewall({ socket: join(server.dir, 'absent.sock'), jail: 'sshd-test' });
    await expect(gone.init()).rejects.toThrow(
      /cannot reach fail2ban at .*absent\.sock: is fail2ban-server running\?/,
    );
  }, 30_000);
});
