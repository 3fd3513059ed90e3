import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource } from '../../src/sources/file.js';
import { MemoryPositions, PositionFile } from '../../src/sources/position-file.js';
import { requirements } from '../helpers/requirements.js';
import { collector, numberProblems, sleep, tempDir, waitFor } from './helpers.js';

const run = promisify(execFile);
const req = requirements('file source with logrotate', ['cmd:logrotate']);

// A writer like a daemon: keeps its log open (O_APPEND), reopens it on SIGHUP (nginx's USR1).
const WRITER = `
import { closeSync, openSync, writeSync } from 'node:fs';
const [path, count] = [process.argv[2], Number(process.argv[3])];
let fd = openSync(path, 'a');
process.on('SIGHUP', () => { closeSync(fd); fd = openSync(path, 'a'); });
writeSync(1, 'ready\\n');
let i = 0;
const start = Date.now();
// Paced by the clock, not by timer ticks: two lines per millisecond.
const t = setInterval(() => {
  const due = Math.min(count, (Date.now() - start) * 2);
  while (i < due) writeSync(fd, 'line ' + ++i + '\\n');
  if (i >= count) { clearInterval(t); closeSync(fd); process.exit(0); }
}, 1);
`;

async function readLogs(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('app.log'));
  const texts = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
  return texts.flatMap((t) => t.split('\n').filter((l) => l !== ''));
}

describe.skipIf(req.skip)('file source with logrotate', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let src: FileSource | undefined;
  let writer: ChildProcess | undefined;
  beforeEach(async () => {
    tmp = await tempDir('rot');
  });
  afterEach(async () => {
    writer?.kill('SIGKILL');
    await src?.stop();
    await tmp.remove();
  });

  /** Starts the writer and waits until it handles SIGHUP (rotating earlier would kill it). */
  async function startWriter(log: string, count: number): Promise<{ exited: Promise<unknown> }> {
    writeFileSync(tmp.path('writer.mjs'), WRITER);
    writer = spawn(process.execPath, [tmp.path('writer.mjs'), log, String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => writer!.once('exit', r));
    await new Promise((r) => writer!.stdout!.once('data', r));
    // Wrapped: an async function returning a promise would wait for it.
    return { exited };
  }

  function rotate(log: string, mode: 'create' | 'copytruncate') {
    const conf = tmp.path('logrotate.conf');
    const action =
      mode === 'create'
        ? `create\n  postrotate\n    kill -HUP ${writer!.pid} || true\n  endscript`
        : 'copytruncate';
    writeFileSync(conf, `${log} {\n  rotate 9\n  missingok\n  ${action}\n}\n`);
    return run('logrotate', ['-f', '-s', tmp.path('state'), conf]);
  }

  for (const mode of ['create', 'copytruncate'] as const) {
    it(`logrotate ${mode} while a writer appends: every numbered line arrives exactly once`, async () => {
      const log = tmp.path('app.log');
      const count = 4000;
      writeFileSync(log, '');
      const c = collector();
      src = new FileSource({
        paths: [log],
        pollMs: 200,
        rotateGraceMs: 500,
        positions: new MemoryPositions(),
      });
      await src.start(c.push);
      const { exited } = await startWriter(log, count);
      for (let r = 0; r < 3; r++) {
        await sleep(250);
        await rotate(log, mode);
      }
      await exited;
      // copytruncate has a window between the copy and the truncation in which the writer's lines
      // exist in neither file (logrotate's man page says so); we may still have read them before
      // the truncation. What must hold: every line that survived on disk arrives, nothing twice.
      const onDisk = mode === 'create' ? [] : await readLogs(tmp.dir);
      const kept = mode === 'create' ? count : onDisk.length;
      await waitFor(() => c.lines.length >= kept, `${kept} lines`, 15_000);
      await sleep(700);
      if (mode === 'create') {
        expect(numberProblems(c.texts(), 'line', count)).toEqual([]);
        expect(c.lines.length).toBe(count);
      } else {
        const got = new Set(c.texts());
        expect(got.size).toBe(c.lines.length);
        expect(onDisk.filter((l) => !got.has(l))).toEqual([]);
        expect(c.texts().filter((t) => !/^line \d+$/.test(t) || Number(t.slice(5)) > count)).toEqual([]);
      }
      // The rotations really happened while lines were being written.
      const { stdout } = await run('ls', [tmp.dir]);
      expect(stdout).toMatch(/app\.log\.3/);
    });
  }

  it('stopped across a logrotate create: restart from the position file loses and repeats nothing', async () => {
    const log = tmp.path('app.log');
    const count = 3000;
    const posFile = tmp.path('positions.json');
    writeFileSync(log, '');
    const c = collector();
    const positions = new PositionFile(posFile);
    src = new FileSource({ paths: [log], pollMs: 200, rotateGraceMs: 500, positions });
    await src.start(c.push);
    const { exited } = await startWriter(log, count);
    await sleep(300);
    await src.stop();
    positions.close();
    const before = c.lines.length;
    await rotate(log, 'create');
    await sleep(300);
    src = new FileSource({
      paths: [log],
      pollMs: 200,
      rotateGraceMs: 500,
      positions: new PositionFile(posFile),
    });
    await src.start(c.push);
    await sleep(200);
    await rotate(log, 'create');
    await exited;
    await waitFor(() => c.lines.length >= count, `${count} lines`, 15_000);
    await sleep(700);
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(count);
    expect(numberProblems(c.texts(), 'line', count)).toEqual([]);
  });
});
