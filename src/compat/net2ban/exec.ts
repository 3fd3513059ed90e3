import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RampartError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { bindParams } from '../../firewall/command.js';
import { expandTags } from '../../firewall/command-tags.js';
import { runTool } from '../../firewall/run-tool.js';
import { readFail2banConfig } from '../fail2ban-ini.js';

/**
 * Runs `[Definition] ACTION` of `DIR/FILE.conf`, one shell per line as the original did. The
 * file's own tags (`<chain>` from `[Init]`, ...) are expanded as code — the operator shipped that
 * file — while every tag named in the message's params reaches the shell only as a positional
 * parameter (`"${1}"`), so a value such as `192.0.2.1; rm -rf /` stays one word of data. The
 * original pasted the values into the command text and ran it with os.system.
 */
export async function runAction(
  dir: string,
  file: string,
  action: string,
  params: Record<string, string>,
  log: Logger,
): Promise<{ lines: number; failed: number }> {
  const path = join(dir, `${file}.conf`);
  const cfg = readFail2banConfig(path);
  const raw = cfg.hasSection('Definition') ? cfg.get('Definition', action) : undefined;
  if (raw === undefined) {
    throw new RampartError('E_CONFIG', `${path}: [Definition] has no "${action}"`);
  }
  const values = Object.fromEntries(Object.entries(params).map(([k, v]) => [k.toLowerCase(), v]));
  const family = values.ip?.includes(':') ? 'inet6' : 'inet4';
  const data = new Set(Object.keys(values));
  let lines = 0;
  let failed = 0;
  for (const line of raw.split('\n')) {
    if (!line.trim()) continue;
    lines++;
    const text = expandTags(
      line.replace(/\r/g, ''),
      { config: cfg, family, init: {}, data },
      { file: path, key: action },
    );
    const { body, params: argv } = bindParams({ text, values }, 0);
    const r = await runTool('sh', ['-c', body, 'sh', ...argv], { timeoutMs: 60_000 });
    if (r.code !== 0 || r.spawnError) {
      failed++;
      log.warn(
        { file, action, exit: r.code, stderr: r.stderr.trim().slice(0, 200) },
        'net2ban: an action line failed',
      );
    }
  }
  return { lines, failed };
}

/** `update`: writes `DIR/FILE.conf` atomically (FILE is already sanitised by parseCommand). */
export function writeActionFile(dir: string, file: string, content: Buffer): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${file}.conf`);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o640 });
  renameSync(tmp, path);
  return path;
}
