import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { appendLog, cli, createLog, inKernelSet, rampart, removeDir, tempDir, until } from './harness.js';

const req = requirements('rampart up --fail2ban-jails', [
  'netns',
  'cmd:nft',
  'file:/etc/fail2ban/jail.conf',
  'file:/etc/fail2ban/filter.d/exim.conf',
]);

// A copy of the real /etc/fail2ban with an operator's jail.d file enabling exim on a log of the
// test's own: the jail's filter, logpath and maxretry decide the ban, which reaches the kernel.
describe.skipIf(req.skip)('rampart up --fail2ban-jails (a real /etc/fail2ban layout)', () => {
  let lan: Lan;
  let dir: string;
  beforeAll(async () => {
    lan = await createLan(1, 'f2bj');
    dir = tempDir('f2b-jails');
  });
  afterAll(async () => {
    await lan?.destroy();
    if (dir) removeDir(dir);
  });

  it('bans from an enabled jail: exim filter, its logpath, its maxretry', async () => {
    const host = lan.hosts[0]!;
    const etc = `${dir}/fail2ban`;
    const log = `${dir}/exim-mainlog`;
    cpSync('/etc/fail2ban', etc, { recursive: true });
    mkdirSync(`${etc}/jail.d`, { recursive: true });
    // Debian enables sshd on /var/log/auth.log; this test only wants its own log.
    writeFileSync(`${etc}/jail.local`, '[sshd]\nenabled = false\n');
    writeFileSync(`${etc}/jail.d/mail.local`, `[exim]\nenabled = true\nlogpath = ${log}\nmaxretry = 3\n`);
    createLog(log);
    const args = [
      'up',
      '--data',
      `${dir}/data`,
      '--fail2ban-jails',
      etc,
      '--no-auth-log',
      '--firewall',
      'nftables',
    ];
    const up = rampart(host, args);
    try {
      await up.waitFor((l) => l.msg === 're-applied local bans', 30_000, 'agent started');
      // The banner comes after the agent's sources started: lines appended now are read.
      await until(() => up.text.join('').includes('rampart is up'), 10_000, 'banner');
      const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ');
      const line = (ip: string) =>
        `${stamp} login authenticator failed for (x) [${ip}]: 535 Incorrect authentication data (set_id=bob)\n`;
      // Two failures (under maxretry = 3) first: read before the third of the other address.
      appendLog(log, line('203.0.113.8').repeat(2) + line('203.0.113.7').repeat(3));
      await until(() => inKernelSet(host, '203.0.113.7'), 15_000, 'exim jail ban in the kernel');
      expect(await inKernelSet(host, '203.0.113.8')).toBe(false);
      // An operator's ban answers once this host's kernel holds it: nothing to wait for after.
      await cli(host, ['ban', '192.0.2.44', '--for', '1h', '--data', `${dir}/data`]);
      expect(await inKernelSet(host, '192.0.2.44')).toBe(true);
    } finally {
      expect(await up.stop()).toBe(0);
    }
  });
});
