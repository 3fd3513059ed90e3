import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeJoinToken } from '../../src/trust/join-token.js';
import { fingerprint, generateKeyPair } from '../../src/trust/keys.js';

const run = promisify(execFile);
const MAIN = resolve('dist/cli/main.js');

async function rampart(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('agent CLI (built dist/)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-agent-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rampart agent before join: exit 2, says how to enrol', async () => {
    const r = await rampart(['agent', '--data', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has not joined a hub yet: .*rampart nodes add NAME.*rampart join TOKEN/);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('a corrupt join token: exit 2, one line', async () => {
    const r = await rampart(['join', 'rpj1.!!!', '--data', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^rampart: join token is corrupt/);
  });

  it('a hub that cannot be reached: exit 1 naming it, and no enrolment written', async () => {
    const token = encodeJoinToken({
      url: 'http://127.0.0.1:9',
      hubKey: fingerprint(generateKeyPair().publicKey),
      name: 'web2',
      secret: 'A'.repeat(43),
    });
    const r = await rampart(['join', token, '--data', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hub http:\/\/127\.0\.0\.1:9 unreachable/);
    expect((await rampart(['agent', '--data', dir])).stderr).toMatch(/not joined/);
  });

  it('a bad config file: exit 2 naming file, line and key', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'agent:\n  watch: 5\n');
    const r = await rampart(['agent', '--config', file, '--data', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:2: agent.watch:`);
  });
});
