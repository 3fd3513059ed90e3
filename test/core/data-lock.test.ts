import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockDataFolder } from '../../src/core/data-lock.js';
import { requirements } from '../helpers/requirements.js';

const MAIN = resolve('dist/cli/main.js');
const req = requirements('one process per data folder (CLI)', [`file:${MAIN}`]);

describe('one process per data folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a second lock of one folder and role is refused naming the holder; other roles and folders are free', async () => {
    const hub = await lockDataFolder(dir, 'hub');
    await expect(lockDataFolder(dir, 'hub')).rejects.toMatchObject({
      code: 'E_LOCKED',
      message: expect.stringContaining(`in use by another rampart hub (pid ${process.pid})`),
    });
    const agent = await lockDataFolder(dir, 'agent');
    const other = await lockDataFolder(join(dir, '..', `${dir.split('/').pop()}-other`), 'hub');
    await hub.release();
    const again = await lockDataFolder(dir, 'hub');
    for (const l of [again, agent, other]) await l.release();
  });

  it.skipIf(req.skip)(
    'a second `rampart hub` on the folder exits with one line naming the first one’s pid; the first is untouched',
    async () => {
      const data = mkdtempSync(join(tmpdir(), 'rampart-lock-cli-'));
      const first = spawn(
        process.execPath,
        [MAIN, 'hub', '--data', data, '--port', '0', '--broker-port', '0'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      try {
        await new Promise<void>((ok, fail) => {
          let out = '';
          first.stdout.on('data', (b: Buffer) => {
            out += b.toString();
            if (out.includes('hub started')) ok();
          });
          first.once('exit', () => fail(new Error(`first hub exited: ${out}`)));
        });
        const info = readFileSync(join(data, 'hub', 'hub.json'), 'utf8');
        const second = spawn(
          process.execPath,
          [MAIN, 'hub', '--data', data, '--port', '0', '--broker-port', '0'],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let err = '';
        second.stderr.on('data', (b: Buffer) => {
          err += b.toString();
        });
        const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
        expect(code).toBe(1);
        expect(err.trim().split('\n')).toEqual([
          `rampart: data folder ${data} is in use by another rampart hub (pid ${first.pid}): stop it first, or give this one its own --data`,
        ]);
        expect(readFileSync(join(data, 'hub', 'hub.json'), 'utf8')).toBe(info);
        expect(first.exitCode).toBeNull();
      } finally {
        first.kill('SIGTERM');
        await new Promise((r) => first.once('exit', r));
        rmSync(data, { recursive: true, force: true });
      }
    },
  );
});
