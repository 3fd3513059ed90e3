import { tryParseTarget } from '../../core/address.js';

/** A command as net2banctl sends it and the server forwards it. */
export type Net2banCommand =
  | { cmd: 'exec'; file: string; action: string; params: Record<string, string>; timestamp: number }
  | { cmd: 'update'; file: string; content: string; client: string; timestamp: number };

export type ParseFailure =
  | 'bad-json'
  | 'missing-field'
  | 'bad-field'
  | 'bad-file'
  | 'bad-ip'
  | 'expired'
  | 'future';

/** The action file's name on disk: the original's own cleaning (no `/`, no `.`), then a whitelist. */
export function actionFileName(file: string): string | null {
  const clean = file.replace(/[/.]/g, '');
  return /^[A-Za-z0-9_-]{1,100}$/.test(clean) ? clean : null;
}

const ACTION = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const TAG = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A clock a few seconds ahead of ours is not an attack: NTP-synchronised peers still differ. */
export const FUTURE_SKEW_S = 2;

/**
 * Parses and checks one decrypted plaintext. The original meant to refuse messages older than
 * `valid_wtime` seconds and never did (it compared a string with a number); here it is enforced,
 * and a timestamp more than {@link FUTURE_SKEW_S} seconds ahead is refused too.
 */
export function parseCommand(
  plain: Buffer,
  o: { validWtime: number; now?: number },
): { ok: true; command: Net2banCommand } | { ok: false; reason: ParseFailure; detail: string } {
  const fail = (reason: ParseFailure, detail: string) => ({ ok: false as const, reason, detail });
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain));
  } catch (err) {
    return fail('bad-json', (err as Error).message.slice(0, 80));
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('bad-json', 'not a JSON object');
  const m = v as Record<string, unknown>;
  for (const k of ['timestamp', 'file', 'cmd']) if (!(k in m)) return fail('missing-field', k);
  if (typeof m.timestamp !== 'number' || !Number.isFinite(m.timestamp)) return fail('bad-field', 'timestamp');
  if (typeof m.file !== 'string') return fail('bad-field', 'file');
  const file = actionFileName(m.file);
  if (!file) return fail('bad-file', 'file');
  const now = (o.now ?? Date.now()) / 1000;
  if (m.timestamp > now + FUTURE_SKEW_S) return fail('future', `${(m.timestamp - now).toFixed(0)} s ahead`);
  if (now - m.timestamp > o.validWtime) return fail('expired', `${(now - m.timestamp).toFixed(0)} s old`);
  if (m.cmd === 'exec') {
    for (const k of ['action', 'params']) if (!(k in m)) return fail('missing-field', k);
    if (typeof m.action !== 'string' || !ACTION.test(m.action)) return fail('bad-field', 'action');
    const p = m.params;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) return fail('bad-field', 'params');
    for (const [k, val] of Object.entries(p)) {
      if (!TAG.test(k) || typeof val !== 'string' || val.length > 4096) return fail('bad-field', 'params');
    }
    // fromEntries defines own properties: `params.__proto__ = v` would set the prototype instead
    // and drop the tag (a key JSON.parse gives as an ordinary one).
    const params = Object.fromEntries(Object.entries(p)) as Record<string, string>;
    if (params.ip !== undefined && !tryParseTarget(params.ip)) return fail('bad-ip', 'params.ip');
    return { ok: true, command: { cmd: 'exec', file, action: m.action, params, timestamp: m.timestamp } };
  }
  if (m.cmd === 'update') {
    for (const k of ['content', 'client']) if (!(k in m)) return fail('missing-field', k);
    if (typeof m.content !== 'string' || !BASE64.test(m.content) || m.content.length > 1_400_000) {
      return fail('bad-field', 'content');
    }
    if (typeof m.client !== 'string') return fail('bad-field', 'client');
    return {
      ok: true,
      command: { cmd: 'update', file, content: m.content, client: m.client, timestamp: m.timestamp },
    };
  }
  return fail('bad-field', 'cmd');
}

/** The plaintext bytes, as the original's JSON encoder wrote them (ASCII, `\uXXXX` escapes). */
export function encodeCommand(c: Net2banCommand): Buffer {
  const json = JSON.stringify(c).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return Buffer.from(json, 'ascii');
}

/**
 * net2banctl's `update`: each line cut at the first `#`, right-trimmed, empty lines dropped,
 * base64; the name is the file's base name without its last extension (dots removed).
 */
export function updatePayload(path: string, text: string): { file: string; content: string } {
  let out = '';
  for (const line of text.split('\n')) {
    const kept = line.split('#', 1)[0]!.trimEnd();
    if (kept.length > 0) out += `${kept}\n`;
  }
  const base = path.replace(/^.*\//, '');
  const parts = base.split('.');
  const file = (parts.length > 1 ? parts.slice(0, -1) : parts).join('');
  return { file, content: Buffer.from(out, 'utf8').toString('base64') };
}
