import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkModules } from '../../src/ops/doctor/kernel.js';
import { checkBroker, checkHub } from '../../src/ops/doctor/network.js';
import { checkPermissions } from '../../src/ops/doctor/permissions.js';
import { formatResult } from '../../src/ops/doctor/run.js';
import { freePort } from '../helpers/free-port.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub } from '../hub/helpers.js';
import { MAIN, rampart } from './run-cli.js';

describe('rampart doctor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-doctor-'));
  /** A stand-in hub whose clock the test sets: /v1/health with a chosen Date header. */
  let hub: Server;
  let hubUrl: string;
  let offsetMs = 0;
  beforeAll(async () => {
    hub = createServer((req, res) => {
      res.setHeader('date', new Date(Date.now() + offsetMs).toUTCString());
      res.statusCode = req.url === '/v1/health' ? 200 : 404;
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', () => r()));
    hubUrl = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => hub.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('kernel modules: /proc/modules or /sys/module make one loaded; otherwise a warning with modprobe', () => {
    const proc = join(dir, 'modules');
    writeFileSync(proc, 'nf_tables 1 0 - Live 0x0\nip_set 1 0 - Live 0x0\n');
    const sys = join(dir, 'sysmodule');
    mkdirSync(join(sys, 'nf_conntrack'), { recursive: true });
    const r = checkModules({ procModules: proc, sysModule: sys });
    expect(r.map((x) => [x.check, x.status])).toEqual([
      ['module nf_tables', 'ok'],
      ['module ip_set', 'ok'],
      ['module xt_recent', 'warn'],
      ['module nf_conntrack', 'ok'],
    ]);
    expect(formatResult(r[2]!)).toMatch(/^warn {2}module xt_recent: not loaded .*; fix: modprobe xt_recent/);
  });

  it('permissions: keys, tokens and databases must be 0600 in 0700 folders, each fix printed', () => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'hub'), { recursive: true, mode: 0o700 });
    chmodSync(data, 0o755);
    for (const f of ['hub.key', 'admin.token', 'hub.db', 'hub.json'])
      writeFileSync(join(data, 'hub', f), 'x');
    chmodSync(join(data, 'hub', 'hub.key'), 0o600);
    chmodSync(join(data, 'hub', 'admin.token'), 0o640);
    chmodSync(join(data, 'hub', 'hub.db'), 0o644);
    chmodSync(join(data, 'hub', 'hub.json'), 0o644); // not secret: where the API listens
    const bad = checkPermissions(data).map(formatResult);
    expect(bad).toEqual([
      `fail  permissions ${data}: folder mode 0755: others can look inside; fix: chmod 700 ${data}`,
      `fail  permissions ${data}/hub/admin.token: mode 0640: group or others can read it; fix: chmod 600 ${data}/hub/admin.token`,
      `fail  permissions ${data}/hub/hub.db: mode 0644: group or others can read it; fix: chmod 600 ${data}/hub/hub.db`,
    ]);
    chmodSync(data, 0o700);
    chmodSync(join(data, 'hub', 'admin.token'), 0o600);
    chmodSync(join(data, 'hub', 'hub.db'), 0o600);
    expect(checkPermissions(data)).toEqual([
      expect.objectContaining({
        status: 'ok',
        detail: `${data}: 3 key, token and database files 0600 in 2 folders 0700`,
      }),
    ]);
    expect(checkPermissions(join(dir, 'none'))[0]!.status).toBe('warn');
  });

  it('a fresh hub and agent data folder passes: databases are created 0600', async () => {
    const t = await startTestHub();
    try {
      const r = checkPermissions(t.dataDir);
      expect(r.map(formatResult)).toEqual([expect.stringMatching(/^ok {4}permissions: /)]);
      expect(r[0]!.detail).toMatch(/ [3-9] key, token and database files 0600/);
    } finally {
      await t.close();
    }
  });

  it('hub and clock: in step is ok, 5 s off a warning, 10 minutes off a failure', async () => {
    offsetMs = 0;
    expect((await checkHub(hubUrl)).map((r) => r.status)).toEqual(['ok', 'ok']);
    offsetMs = 5_000;
    const [, warned] = await checkHub(hubUrl);
    expect(warned).toMatchObject({ status: 'warn', check: `clock vs ${hubUrl}` });
    expect(warned!.detail).toMatch(/^hub ahead by [45]\.\d s$/);
    offsetMs = -600_000;
    const [, failed] = await checkHub(hubUrl);
    expect(failed).toMatchObject({ status: 'fail' });
    expect(failed!.detail).toMatch(
      /^hub behind by (599|600)\.\d s: signed messages older than 60 s are dropped$/,
    );
    expect(failed!.fix).toMatch(/NTP/);
    offsetMs = 0;
  });

  it('an unreachable hub is one failed line naming it, not a stack', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await checkHub(url);
    expect(r).toHaveLength(1);
    expect(formatResult(r[0]!)).toMatch(
      new RegExp(`^fail  hub ${url}: unreachable \\(ECONNREFUSED\\); fix: start "rampart hub"`),
    );
  });

  const mosquitto = requirements('doctor broker check', ['tcp:1883']);
  it.skipIf(mosquitto.skip)(
    'broker: a TCP connection to the real Mosquitto; a closed port fails; no password printed',
    async () => {
      const port = await freePort();
      const r = await checkBroker(`mqtt://u:secret@127.0.0.1:1883,mqtt://127.0.0.1:${port}`);
      expect(r.map((x) => [x.check, x.status])).toEqual([
        ['broker mqtt://127.0.0.1:1883', 'ok'],
        [`broker mqtt://127.0.0.1:${port}`, 'fail'],
      ]);
      expect(JSON.stringify(r)).not.toContain('secret');
    },
  );

  const cli = requirements('doctor CLI', [`file:${MAIN}`]);
  it.skipIf(cli.skip)(
    'the command: exit 1 when a check fails, 0 when only warnings remain, --json',
    async () => {
      offsetMs = 0;
      const data = join(dir, 'cli-data');
      mkdirSync(data, { mode: 0o700 });
      const down = `http://127.0.0.1:${await freePort()}`;
      const failed = await rampart(['doctor', '--data', data, '--hub', down, '--json'], {
        env: { RAMPART_DATA: data },
      });
      expect(failed.code).toBe(1);
      const rows = JSON.parse(failed.stdout) as Array<{ check: string; status: string }>;
      expect(rows.find((r) => r.check === `hub ${down}`)).toMatchObject({ status: 'fail' });
      expect(rows.map((r) => r.check)).toEqual(
        expect.arrayContaining(['module nf_tables', 'program nft', 'driver nft', 'permissions', 'broker']),
      );
      const fine = await rampart(['doctor', '--data', data, '--hub', hubUrl]);
      expect(fine.stdout).toMatch(new RegExp(`^ok {4}hub ${hubUrl}: answers`, 'm'));
      expect(fine.stdout.split('\n').filter((l) => l.startsWith('fail'))).toEqual([]);
      expect(fine.code).toBe(0);
    },
  );
});
