import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eachTargetLine, readTargetFile } from '../../src/firewall/target-file.js';
import { MAIN } from '../cli/run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rampart-target-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 120,000 lines: well past the 1 MB read block, so lines straddle block boundaries. */
function bigFile(last: string): string {
  const lines: string[] = ['# header'];
  for (let i = 0; i < 120_000; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} 1h`);
  lines.push(last);
  const file = path.join(dir, `big-${lines.length}-${last.length}.txt`);
  writeFileSync(file, lines.join('\n'));
  return file;
}

describe('target files', () => {
  it('a file bigger than one read block gives every line once, with its number, including an unterminated last line', () => {
    const file = bigFile('2001:db8::7 2h');
    const got = readTargetFile(file);
    expect(got).toHaveLength(120_001);
    expect(got[0]).toMatchObject({ line: 2, timeout: 3600 });
    expect(got[0]!.target.text).toBe('10.0.0.0');
    expect(got[70_000]!.target.text).toBe('10.1.17.112');
    expect(got[70_000]!.line).toBe(70_002);
    expect(got.at(-1)).toMatchObject({ line: 120_002, timeout: 7200 });
    expect(got.at(-1)!.target.text).toBe('2001:db8::7');
  });

  it('a bad line after the first block is reported as FILE:LINE', () => {
    const file = bigFile('192.0.2.300');
    expect(() => {
      for (const _ of eachTargetLine(file)) {
      }
    }).toThrow(`${file}:120002:`);
  });

  it('multi-byte text split across blocks is decoded whole', () => {
    const file = path.join(dir, 'utf8.txt');
    // A comment of 2-byte characters long enough to cross the 1 MB block boundary.
    writeFileSync(file, `# ${'é'.repeat(600_000)}\n192.0.2.9\n`);
    expect(readTargetFile(file).map((l) => [l.line, l.target.text])).toEqual([[2, '192.0.2.9']]);
  });

  it('a missing file is one E_CONFIG naming it', () => {
    const file = path.join(dir, 'absent.txt');
    expect(() => readTargetFile(file)).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
    expect(() => readTargetFile(file)).toThrow(file);
  });

  it('--from-file - spools standard input to a private file read twice: every line applied, a bad one names "-", the copy removed', () => {
    const tmp = mkdtempSync(path.join(dir, 'spool-'));
    const lines: string[] = [];
    for (let i = 0; i < 70_000; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} 1h`);
    const cli = (input: string) =>
      spawnSync(
        process.execPath,
        [MAIN, 'firewall', 'add', '--backend', 'dry-run', '--from-file', '-', '--json'],
        {
          input,
          env: { ...process.env, TMPDIR: tmp, RAMPART_LOG_LEVEL: 'error' },
          encoding: 'utf8',
        },
      );
    const ok = cli(`${lines.join('\n')}\n`);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ backend: 'dry-run', added: 70_000 });
    const bad = cli(`${lines.slice(0, 3).join('\n')}\n192.0.2.300\n`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('-:4: "192.0.2.300"');
    expect(readdirSync(tmp)).toEqual([]);
  });
});
