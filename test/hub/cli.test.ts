import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { within } from '../helpers/child-output.js';
import { requirements } from '../helpers/requirements.js';
import { walHeader, walRestarts } from '../helpers/wal-header.js';
import { until } from './helpers.js';

/** A port nobody listens on: bound, then released. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const MAIN = resolve('dist/cli/main.js');
const req = requirements('hub CLI end to end', [`file:${MAIN}`]);

describe.skipIf(req.skip)('hub CLI end to end (node dist/cli/main.js)', () => {
  let dir: string;
  let hub: ChildProcess;
  let hubExit: Promise<number | null>;
  let stderr = '';

  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [MAIN, ...args], {
      env: { ...process.env, RAMPART_HUB: '', RAMPART_TOKEN: '', RAMPART_DATA: dir, ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
    hub = spawn(process.execPath, [MAIN, 'hub', '--data', dir, '--port', '0', '--broker-port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RAMPART_LOG_LEVEL: 'warn' },
    });
    hub.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    hubExit = new Promise((r) => hub.once('exit', (code) => r(code)));
    const info = join(dir, 'hub', 'hub.json');
    const end = Date.now() + 15_000;
    while (!existsSync(info)) {
      if (Date.now() > end || hub.exitCode !== null) throw new Error(`hub did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 20_000);

  afterAll(async () => {
    if (hub && hub.exitCode === null) {
      hub.kill('SIGKILL');
      await hubExit;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('the hub writes its real URL to hub.json when started with --port 0', async () => {
    const info = JSON.parse(readFileSync(join(dir, 'hub', 'hub.json'), 'utf8'));
    expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:(?!0$)\d+$/);
    // hub.json is written just before the startup line reaches our pipe: on a loaded box, wait for it.
    const end = Date.now() + 5000;
    while (!stderr.includes(info.url) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toContain(info.url);
  });

  it('ban, list --json, unban work on the hub machine with no flags; exit codes are 0, 2, 1', () => {
    expect(run(['ban', '192.0.2.7', '--for', '12h', '--reason', 'scanner'])).toMatchObject({
      code: 0,
      out: expect.stringMatching(/banned 192\.0\.2\.7 for 12h \(seq 1\)/),
    });
    const listed = run(['list', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.out).items).toEqual([
      expect.objectContaining({ target: '192.0.2.7', reason: 'scanner' }),
    ]);
    expect(run(['list']).out).toMatch(/192\.0\.2\.7\s+(11h59m|12h)/);

    const bad = run(['ban', 'not-an-ip']);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(run(['ban', '127.0.0.1']).code).toBe(2);
    expect(run(['ban', '192.0.2.8', '--for', 'soon']).code).toBe(2);

    expect(run(['unban', '192.0.2.7'])).toMatchObject({ code: 0, out: 'unbanned 192.0.2.7 (seq 2)\n' });
    const again = run(['unban', '192.0.2.7']);
    expect(again.code).toBe(1);
    expect(again.err).toBe('rampart: 192.0.2.7 is not banned\n');
  });

  it('list filters and pages; unban of an address inside a banned range names the range; unban takes several', () => {
    expect(run(['ban', '203.0.113.0/24', '--reason', 'range']).code).toBe(0);
    expect(run(['ban', '192.0.2.30']).code).toBe(0);
    expect(run(['ban', '192.0.2.31']).code).toBe(0);
    const inside = JSON.parse(run(['list', '--json', '--target', '203.0.113.7']).out);
    expect(inside).toMatchObject({ total: 1, items: [{ target: '203.0.113.0/24' }] });
    const one = run(['list', '--limit', '1']);
    expect(one.out).toMatch(/^TARGET/);
    expect(one.out).toContain('(1 of 3; --limit N or --all for more)');
    expect(JSON.parse(run(['list', '--json', '--all', '--origin', 'operator']).out).total).toBe(3);
    expect(JSON.parse(run(['list', '--json', '--origin', 'web9']).out)).toEqual({ items: [], total: 0 });
    expect(run(['list', '--limit', 'many']).code).toBe(2);
    expect(run(['list', '--since', 'yesterday-ish']).code).toBe(2);

    const covered = run(['unban', '203.0.113.7']);
    expect(covered.code).toBe(1);
    expect(covered.err).toBe(
      'rampart: 203.0.113.7 is not banned itself, but 203.0.113.0/24 covers it; unban that range to lift it\n',
    );
    const many = run(['unban', '192.0.2.30', '192.0.2.99', '192.0.2.31']);
    expect(many.code).toBe(1);
    expect(many.out).toMatch(/unbanned 192\.0\.2\.30 .*\nunbanned 192\.0\.2\.31 /s);
    expect(many.err).toContain('1 of 3 not unbanned: 192.0.2.99');
    expect(run(['unban', '203.0.113.0/24']).code).toBe(0);
  });

  it('allow and nodes commands, with --json listings', () => {
    expect(run(['allow', 'add', '198.51.100.0/24', '--comment', 'office']).code).toBe(0);
    expect(JSON.parse(run(['allow', 'list', '--json']).out)).toEqual([
      expect.objectContaining({ cidr: '198.51.100.0/24', comment: 'office' }),
    ]);
    expect(run(['ban', '198.51.100.9']).code).toBe(2);
    expect(run(['allow', 'remove', '198.51.100.0/24']).code).toBe(0);

    const added = run(['nodes', 'add', 'web2']);
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/rampart join rpj1\.[A-Za-z0-9_-]+/);
    expect(added.err).toMatch(/other servers cannot reach: start the hub with --listen 0\.0\.0\.0/);
    expect(JSON.parse(run(['nodes', 'list', '--json']).out)).toEqual([
      expect.objectContaining({ name: 'web2', state: 'invited' }),
    ]);
    expect(run(['nodes', 'remove', 'web2']).code).toBe(0);
    expect(run(['nodes', 'remove', 'web2']).code).toBe(1);
    const status = JSON.parse(run(['status', '--json']).out);
    expect(status).toMatchObject({ decisions: { active: 0 }, bus: { type: 'mqtt' } });
  });

  it('from elsewhere it needs --hub/--token (or the env), and says so; a down hub is exit 1', async () => {
    const closed = await freePort();
    const other = mkdtempSync(join(tmpdir(), 'rampart-cli-other-'));
    try {
      const none = run(['list'], { RAMPART_DATA: other });
      expect(none.code).toBe(2);
      expect(none.err).toMatch(/no hub found: pass --hub URL --token T/);
      const info = JSON.parse(readFileSync(join(dir, 'hub', 'hub.json'), 'utf8'));
      const token = readFileSync(join(dir, 'hub', 'admin.token'), 'utf8').trim();
      expect(run(['list', '--hub', info.url, '--token', token], { RAMPART_DATA: other }).code).toBe(0);
      expect(run(['status'], { RAMPART_DATA: other, RAMPART_HUB: info.url, RAMPART_TOKEN: token }).code).toBe(
        0,
      );
      const wrong = run(['list', '--hub', info.url, '--token', 'rpa1.nope'], { RAMPART_DATA: other });
      expect(wrong.code).toBe(1);
      expect(wrong.err).toMatch(/refused the token/);
      const down = run(['list', '--hub', `http://127.0.0.1:${closed}`, '--token', 'x'], {
        RAMPART_DATA: other,
      });
      expect(down.code).toBe(1);
      expect(down.err).toBe(
        `rampart: cannot reach the hub at http://127.0.0.1:${closed} (ECONNREFUSED); is "rampart hub" running?\n`,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('a bad config file is exit 2 naming the file and key, before anything starts', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'hub:\n  policy:\n    bantime: soon\n');
    const r = run(['hub', '--config', file, '--data', join(dir, 'other'), '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`${file}:(\\d+:)? hub\\.policy\\.bantime: .*not a duration`));
    expect(run(['hub', '--port', 'eighty']).code).toBe(2);
  });

  it('SIGTERM shuts the hub down cleanly (exit 0), after its WAL was checkpointed on its own thread too', async () => {
    // Enough bans for the timer to hand a checkpoint to the thread (ADR 0070), which once kept a
    // stopped hub running for good.
    const db = join(dir, 'hub', 'hub.db');
    const restarts = walRestarts(db);
    const list = join(dir, 'many.txt');
    writeFileSync(list, Array.from({ length: 4000 }, (_, i) => `198.18.${i >> 8}.${i & 255}\n`).join(''));
    expect(run(['import', list, '--format', 'blocklist', '--for', '1h']).out).toMatch(/^imported 4000 bans/);
    // A checkpoint ran (frames copied back, or the WAL already started over): the timer hands
    // every checkpoint to the thread first, so the thread is running.
    await until(() => walRestarts(db) > restarts || walHeader(db)[1] > 0, 10_000);
    hub.kill('SIGTERM');
    expect(await within(hubExit, 10_000, 'still running')).toBe(0);
  }, 30_000);
});
