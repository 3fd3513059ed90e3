import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';

const FILTERS = '/etc/fail2ban/filter.d';
const req = requirements('check --fail2ban-filter on logs with their own date forms', [
  `file:${FILTERS}/nginx-http-auth.conf`,
  `file:${FILTERS}/apache-auth.conf`,
]);
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function check(filter: string, log: string) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const r = spawnSync(
    process.execPath,
    [CLI, 'check', '--json', '--matches', '--fail2ban-filter', `${FILTERS}/${filter}.conf`, log],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(req.skip)('rampart check --fail2ban-filter: dates cut as fail2ban does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-check-dates-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('nginx error log: five basic-auth failures ban the client at the log time', () => {
    const lines = Array.from(
      { length: 5 },
      (_, i) =>
        `2024/03/09 11:53:2${i} [error] 2865#0: *6664${i} user "admin${i}" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.43, server: www.example.org, request: "GET / HTTP/1.1", host: "www.example.org"`,
    );
    // A user name that carries another address must not move the failure.
    lines.push(
      '2024/03/09 11:54:00 [error] 2865#0: *7 user "client: 198.51.100.1" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.44, server: a, request: "GET / HTTP/1.1", host: "a"',
    );
    const log = join(dir, 'nginx-error.log');
    writeFileSync(log, `${lines.join('\n')}\n`);
    const out = check('nginx-http-auth', log);
    const ips = out.filter((o) => o.type === 'match').map((o) => o.ip);
    expect(ips).toEqual([...Array(5).fill('192.0.2.43'), '192.0.2.44']);
    expect(out.find((o) => o.type === 'ban')).toMatchObject({ ip: '192.0.2.43', hits: 5 });
    expect(new Date(out.find((o) => o.type === 'ban')!.at as string).getFullYear()).toBe(2024);
  });

  it('Apache error log: `[date]` prefixes are cut and the client (before its port) is banned', () => {
    const lines = Array.from(
      { length: 5 },
      (_, i) =>
        `[Sat Jun 01 11:23:0${i}.402667 2013] [auth_basic:error] [pid 4040] [client 192.0.2.51:5151${i}] AH01618: user alice not found: /secret`,
    );
    const log = join(dir, 'apache-error.log');
    writeFileSync(log, `${lines.join('\n')}\n`);
    const out = check('apache-auth', log);
    expect(out.filter((o) => o.type === 'match').map((o) => o.ip)).toEqual(Array(5).fill('192.0.2.51'));
    const ban = out.find((o) => o.type === 'ban');
    expect(ban).toMatchObject({ ip: '192.0.2.51', hits: 5, rule: 'apache-auth' });
    expect(new Date(ban!.at as string).getUTCFullYear()).toBe(2013);
    expect(out.at(-1)).toMatchObject({ type: 'summary', lines: 5, matched: 5, bans: 1 });
  });
});
