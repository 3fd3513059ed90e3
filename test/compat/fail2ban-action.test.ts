import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { MAIN, rampart } from '../cli/run-cli.js';
import { type Fail2banServer, startFail2banWith } from '../helpers/fail2ban-server.js';
import { requirements } from '../helpers/requirements.js';

const run = promisify(execFile);

/** Polls an async condition (the hub answers over HTTP; fail2ban polls its logs every second). */
async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
const req = requirements('fail2ban bans through the rampart action', ['cmd:fail2ban-server', `file:${MAIN}`]);

// A jail name full of shell characters: the action must hand it over as text, never run it.
// fail2ban-server works in / (it daemonises), where an injected `touch` would leave its file.
const PWNED = `rampart-pwned-${process.pid}`;
const JAIL = `web's-$(touch ${PWNED})"`;
const FOREVER = 'forever';

describe.skipIf(req.skip)('packaging/fail2ban/action.d/rampart.conf on a real fail2ban', () => {
  const data = mkdtempSync(join(tmpdir(), 'rampart-f2bact-'));
  let hub: ChildProcess | undefined;
  let hubExit: Promise<unknown> = Promise.resolve();
  let url = '';
  let token = '';
  let f2b: Fail2banServer | undefined;
  let hubErr = '';

  const decisions = async (): Promise<Decision[]> => {
    const r = await fetch(`${url}/v1/decisions?since=0`, { headers: { authorization: `Bearer ${token}` } });
    return ((await r.json()) as { decisions: Decision[] }).decisions;
  };
  const client = (...a: string[]) => run('fail2ban-client', ['-s', f2b!.socket, ...a], { timeout: 20_000 });
  /** Writes maxretry (2) failures for `ip` to a jail's log, then waits for the hub to log `action`. */
  const attack = async (file: string, ip: string, action: Decision['action'] = 'ban') => {
    const line = `Failed password for root from ${ip} port 22 ssh2\n`;
    await appendFile(join(f2b!.dir, file), line + line);
    return decisionFor(ip, action);
  };
  const decisionFor = async (ip: string, action: Decision['action']): Promise<Decision> => {
    let found: Decision | undefined;
    await until(async () => {
      found = (await decisions()).find((d) => d.target === ip && d.action === action);
      return found !== undefined;
    }, 20_000);
    return found!;
  };

  beforeAll(async () => {
    hub = spawn(process.execPath, [MAIN, 'hub', '--data', data, '--port', '0', '--broker-port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RAMPART_LOG_LEVEL: 'warn' },
    });
    hub.stderr!.on('data', (b: Buffer) => {
      hubErr += b.toString();
    });
    hubExit = new Promise((r) => hub!.once('exit', r));
    const info = join(data, 'hub', 'hub.json');
    await until(() => existsSync(info) || hub!.exitCode !== null, 15_000);
    if (!existsSync(info)) throw new Error(`hub did not start: ${hubErr}`);
    url = (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url;
    token = readFileSync(join(data, 'hub', 'admin.token'), 'utf8').trim();

    const command = `${process.execPath} ${MAIN}`;
    f2b = await startFail2banWith(async (dir, conf) => {
      await copyFile(
        resolve('packaging/fail2ban/action.d/rampart.conf'),
        join(conf, 'action.d', 'rampart.conf'),
      );
      await writeFile(
        join(conf, 'filter.d', 'ssh-test.conf'),
        '[Definition]\nfailregex = ^Failed password for \\S+ from <HOST> port \\d+\ndatepattern = {NONE}\n',
      );
      for (const f of ['auth.log', 'forever.log', 'env.log', 'done']) await writeFile(join(dir, f), '');
      // fail2ban runs a ticket's actions in order and skips an unban until the ban has finished:
      // this second action marks the moment rampart's ban returned.
      await writeFile(
        join(conf, 'action.d', 'done.conf'),
        `[Definition]\nactionban = echo "<ip>" >> ${dir}/done\n`,
      );
      const jail = (name: string, log: string, bantime: string, action: string) =>
        `[${name}]\nenabled = true\nfilter = ssh-test\nlogpath = ${dir}/${log}\nmaxretry = 2\nfindtime = 600\nbantime = ${bantime}\naction = ${action}\n         done\n`;
      const withOptions = `rampart[rampart="${command}", hub="${url}", token="${token}"]`;
      // No hub/token options: the command's environment decides (here set by `env`, as a
      // systemd drop-in would for fail2ban.service).
      const fromEnv = `rampart[rampart="env RAMPART_HUB=${url} RAMPART_TOKEN=${token} ${command}"]`;
      await writeFile(
        join(conf, 'jail.conf'),
        `[DEFAULT]\nbackend = polling\n${jail(JAIL, 'auth.log', '600', withOptions)}${jail(FOREVER, 'forever.log', '-1', withOptions)}${jail('from-env', 'env.log', '2h', fromEnv)}`,
      );
    });
  }, 40_000);

  afterAll(async () => {
    await f2b?.stop();
    if (hub && hub.exitCode === null) {
      hub.kill('SIGKILL');
      await hubExit;
    }
    rmSync(data, { recursive: true, force: true });
  });

  it('a jail ban reaches the hub with the jail bantime and reason; unbanip lifts it', async () => {
    const ban = await attack('auth.log', '192.0.2.10');
    expect(ban).toMatchObject({ duration: 600, reason: `fail2ban/${JAIL}` });
    expect([join('/', PWNED), join(f2b!.dir, PWNED), PWNED].filter((f) => existsSync(f))).toEqual([]);
    await until(async () => (await readFile(join(f2b!.dir, 'done'), 'utf8')).includes('192.0.2.10'), 20_000);

    await client('set', JAIL, 'unbanip', '192.0.2.10');
    expect(await decisionFor('192.0.2.10', 'unban')).toMatchObject({ target: '192.0.2.10' });
  }, 45_000);

  it("a jail's unban (its bantime over, or unbanip) leaves a longer fleet ban in force", async () => {
    const env = { RAMPART_HUB: url, RAMPART_TOKEN: token };
    expect((await rampart(['ban', '198.51.100.20', '--for', '1d'], { env })).code).toBe(0);
    const line = 'Failed password for root from 198.51.100.20 port 22 ssh2\n';
    await appendFile(join(f2b!.dir, 'auth.log'), line + line);
    await until(
      async () => (await readFile(join(f2b!.dir, 'done'), 'utf8')).includes('198.51.100.20'),
      20_000,
    );
    await client('set', JAIL, 'unbanip', '198.51.100.20');
    // The unban action has run once fail2ban no longer lists the address as banned.
    await until(async () => !(await client('get', JAIL, 'banned')).stdout.includes('198.51.100.20'), 20_000);
    const log = (await decisions()).filter((d) => d.target === '198.51.100.20');
    expect(log.map((d) => [d.action, d.reason])).toEqual([['ban', 'manual ban']]);
    expect((await readFile(join(f2b!.dir, 'server.log'), 'utf8')).match(/ERROR.*/g) ?? []).toEqual([]);
  }, 45_000);

  it('a jail with bantime = -1 bans permanently; hub and token may come from the environment', async () => {
    const ban = await attack('forever.log', '2001:db8::66');
    expect(ban).toMatchObject({ duration: null, expiresAt: null, reason: `fail2ban/${FOREVER}` });
    // A jail without hub/token options, and a bantime written with a unit.
    expect(await attack('env.log', '198.51.100.7')).toMatchObject({
      duration: 7200,
      reason: 'fail2ban/from-env',
    });
    // fail2ban logged no failed action (a non-zero exit shows as an ERROR line).
    expect((await readFile(join(f2b!.dir, 'server.log'), 'utf8')).match(/ERROR.*/g) ?? []).toEqual([]);
  }, 45_000);

  it('stopping fail2ban leaves the fleet bans in force', async () => {
    const server = f2b!;
    f2b = undefined;
    await server.stop();
    expect((await decisions()).filter((d) => d.target === '2001:db8::66').map((d) => d.action)).toEqual([
      'ban',
    ]);
  }, 45_000);

  it('`rampart ban --for 600s` exits 0 when a longer ban is already in force', async () => {
    const env = { RAMPART_HUB: url, RAMPART_TOKEN: token };
    expect((await rampart(['ban', '192.0.2.30', '--for', '1d'], { env })).code).toBe(0);
    const again = await rampart(['ban', '192.0.2.30', '--for', '600s', '--reason', 'fail2ban/x'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^kept: 192\.0\.2\.30 is already banned until /);
    // --if-reason: another reason's ban is kept, a missing one is no error, its own is lifted.
    const spare = await rampart(['unban', '192.0.2.30', '--if-reason', 'fail2ban/x'], { env });
    expect([spare.code, spare.stdout]).toEqual([
      0,
      'kept 192.0.2.30: the ban in force has reason "manual ban"\n',
    ]);
    const none = await rampart(['unban', '192.0.2.31', '--if-reason', 'fail2ban/x'], { env });
    expect([none.code, none.stdout]).toEqual([0, 'not banned: 192.0.2.31\n']);
    const lift = await rampart(['unban', '192.0.2.30', '--if-reason', 'manual ban'], { env });
    expect(lift.code).toBe(0);
    expect(lift.stdout).toMatch(/^unbanned 192\.0\.2\.30 \(seq \d+\)\n$/);
    expect((await rampart(['unban', '192.0.2.31'], { env })).code).not.toBe(0);
  });
});
