import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { clip, tryParseTarget } from '../../core/address.js';
import { type DurationSeconds, parseDuration } from '../../core/duration.js';
import { RampartError } from '../../core/errors.js';
import { fsReason } from '../../core/fs-error.js';
import { assertSetName } from '../../core/set-name.js';
import { progressBar } from '../../ops/progress.js';
import { action, usageError } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

/** One ban read from an import file, with the line it came from. */
export interface ImportItem {
  line: number;
  target: string;
  duration?: DurationSeconds;
  reason?: string;
}

export interface ImportParse {
  items: ImportItem[];
  errors: Array<{ line: number; error: string }>;
}

/** Bans sent per `POST /v1/decisions/bulk` (the hub takes up to 100,000). */
const CHUNK = 10_000;
/** Lists at least this long get a progress bar on a terminal. */
const LARGE = 1000;
const MAX_REASON = 256;

/**
 * Parses an import file. `lines`: `TARGET [DURATION] [REASON...]` per line (the format `rampart
 * export` prints); `blocklist`: one address or CIDR per line. Blank lines and `#` comments are
 * skipped. The second field must be a duration, `-` (no duration: the default applies), or a
 * quoted reason: a bare word there is a typo far more often than a reason (`permanently` once
 * became a 1 h ban with that reason), so it is an error naming the line. Lines are hostile text:
 * errors quote them clipped and printable.
 */
export function parseImport(text: string, format: 'lines' | 'blocklist'): ImportParse {
  const out: ImportParse = { items: [], errors: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    const body = (format === 'blocklist' ? raw.replace(/[#;].*$/, '') : raw).trim();
    if (body === '' || body.startsWith('#')) continue;
    const fields = body.split(/\s+/);
    const target = fields[0]!;
    if (format === 'blocklist' && fields.length > 1) {
      out.errors.push({ line, error: `expected one address per line, got "${clip(body, 60)}"` });
      continue;
    }
    if (target.length > 64 || !tryParseTarget(target)) {
      out.errors.push({ line, error: `"${clip(target, 64)}" is not an IPv4 or IPv6 address or range` });
      continue;
    }
    const item: ImportItem = { line, target };
    let rest = body.slice(target.length).trim();
    const second = rest.split(/\s+/)[0] ?? '';
    if (second === '-') {
      rest = rest.slice(1).trim();
    } else if (second !== '' && !/^["']/.test(second)) {
      try {
        item.duration = parseDuration(second, 'duration');
      } catch {
        out.errors.push({
          line,
          error: `"${clip(second, 32)}" is not a duration (90s, 10m, 12h, 1d, 1w, permanent); write "-" for no duration, or quote the reason`,
        });
        continue;
      }
      rest = rest.slice(second.length).trim();
    }
    const quoted = /^(["'])(.*)\1$/.exec(rest);
    if (quoted) rest = quoted[2]!;
    else if (/^["']/.test(rest)) {
      out.errors.push({ line, error: 'the reason opens a quote it never closes' });
      continue;
    }
    if (rest.length > 0) {
      if (rest.length > MAX_REASON) {
        out.errors.push({ line, error: `reason is longer than ${MAX_REASON} characters` });
        continue;
      }
      item.reason = rest;
    }
    out.items.push(item);
  }
  return out;
}

interface BulkAnswer {
  head: number;
  added: number;
  duplicates: number;
  errors: Array<{ index: number; error: string; code: string }>;
  errorCount: number;
}

export function register(program: Command): void {
  hubOptions(
    program
      .command('import')
      .argument('<file>', 'file to read, or - for standard input')
      .option(
        '--format <format>',
        'lines (TARGET [DURATION] [REASON...]) or blocklist (one address per line)',
        'lines',
      )
      .option('--for <duration>', 'ban length for lines without one (default: the hub bantime)')
      .option('--set <name>', 'logical set the bans go to (default blocklist)')
      .option('--replace', 'replace bans in force even where they last longer (default: the longer ban wins)')
      .option('--json', 'print {added, duplicates, errors} as JSON'),
  )
    .description('Ban many addresses at once from a file (the format "rampart export" prints)')
    .addHelpText(
      'after',
      '\nFormat (lines): TARGET [DURATION] [REASON...], one ban per line, # starts a comment.\n' +
        '  DURATION is 90s, 10m, 12h, 1d, 1w or permanent; "-" leaves it to --for or the hub bantime.\n' +
        '  A reason without a duration is quoted or follows "-":\n' +
        '    192.0.2.7 12h web scanner\n    192.0.2.8 - web scanner\n    192.0.2.9 "web scanner"\n' +
        '\nExamples:\n  rampart import bans.txt\n  curl -s https://example.org/list.txt | rampart import - --format blocklist --for 1d',
    )
    .action(
      action(
        async (
          file: string,
          o: HubFlags & { format: string; for?: string; set?: string; replace?: boolean; json?: boolean },
        ) => {
          if (o.format !== 'lines' && o.format !== 'blocklist')
            throw usageError(`--format: "${clip(o.format, 32)}" is not lines or blocklist`);
          if (o.set !== undefined) assertSetName(o.set, '--set');
          const fallback = o.for === undefined ? undefined : parseDuration(o.for, '--for');
          let text: string;
          try {
            text = readFileSync(file === '-' ? 0 : file, 'utf8');
          } catch (err) {
            throw new RampartError('E_USAGE', `cannot read ${file}: ${fsReason(err)}`, {
              cause: err,
            });
          }
          const parsed = parseImport(text, o.format);
          const errors = [...parsed.errors];
          const client = HubClient.from(o);
          let added = 0;
          let duplicates = 0;
          const bar = progressBar('import', parsed.items.length, { minTotal: LARGE });
          for (let at = 0; at < parsed.items.length; at += CHUNK) {
            const chunk = parsed.items.slice(at, at + CHUNK);
            const answer = await client.postAccepting<BulkAnswer>(
              '/v1/decisions/bulk',
              {
                ...(o.replace ? { replace: true } : {}),
                decisions: chunk.map((it) => {
                  const duration = it.duration !== undefined ? it.duration : fallback;
                  return {
                    target: it.target,
                    ...(duration !== undefined
                      ? { duration: duration === null ? 'permanent' : duration }
                      : {}),
                    ...(it.reason !== undefined ? { reason: it.reason } : {}),
                    ...(o.set !== undefined ? { set: o.set } : {}),
                  };
                }),
              },
              [422],
            );
            added += answer.added;
            duplicates += answer.duplicates;
            for (const e of answer.errors) errors.push({ line: chunk[e.index]?.line ?? 0, error: e.error });
            const unlisted = answer.errorCount - answer.errors.length;
            if (unlisted > 0)
              errors.push({ line: chunk.at(-1)!.line, error: `and ${unlisted} more refused in this chunk` });
            bar.update(at + chunk.length);
          }
          bar.finish();
          errors.sort((a, b) => a.line - b.line);
          const where = file === '-' ? 'stdin' : file;
          if (o.json) {
            process.stdout.write(`${JSON.stringify({ added, duplicates, errors })}\n`);
          } else {
            for (const e of errors) process.stderr.write(`${where}:${e.line}: ${clip(e.error, 200)}\n`);
            process.stdout.write(
              `imported ${added} ban${added === 1 ? '' : 's'} (${duplicates} already in force, ${errors.length} bad line${errors.length === 1 ? '' : 's'})\n`,
            );
          }
          if (errors.length > 0) process.exitCode = 2;
        },
      ),
    );
}
