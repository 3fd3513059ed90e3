import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource } from '../../src/sources/file.js';
import { MemoryPositions } from '../../src/sources/position-file.js';
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
let i = 0;
const t = setInterval(() => {
  for (let k = 0; k < 4 && i < count; k++) writeSync(fd, 'line ' + ++i + '\\n');
  if (i >= count) { clearInterval(t); closeSync(fd); process.exit(0); }
}, 1);
`;

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

  for (const mode of ['create', 'copytruncate'] as const) {
    it(`logrotate ${mode} while a writer appends: every numbered line arrives exactly once`, async () => {
      const log = tmp.path('app.log');
      const count = 4000;
      writeFileSync(log, '');
      writeFileSync(tmp.path('writer.mjs'), WRITER);
      const c = collector();
      src = new FileSource({
        paths: [log],
        pollMs: 200,
        rotateGraceMs: 500,
        positions: new MemoryPositions(),
      });
      await src.start(c.push);
      writer = spawn(process.execPath, [tmp.path('writer.mjs'), log, String(count)], { stdio: 'ignore' });
      const exited = new Promise((r) => writer!.once('exit', r));
      const conf = tmp.path('logrotate.conf');
      const action =
        mode === 'create' ? `create\n  postrotate\n    kill -HUP ${writer.pid}\n  endscript` : 'copytruncate';
      writeFileSync(conf, `${log} {\n  rotate 9\n  missingok\n  ${action}\n}\n`);
      for (let r = 0; r < 3; r++) {
        await sleep(250);
        await run('logrotate', ['-f', '-s', tmp.path('state'), conf]);
      }
      await exited;
      await waitFor(() => c.lines.length >= count, `${count} lines`, 15_000);
      await sleep(700);
      expect(numberProblems(c.texts(), 'line', count)).toEqual([]);
      expect(c.lines.length).toBe(count);
      // The rotations really happened while lines were being written.
      const { stdout } = await run('ls', [tmp.dir]);
      expect(stdout).toMatch(/app\.log\.3/);
    });
  }
});
