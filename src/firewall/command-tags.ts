import type { Fail2banConfig } from '../compat/fail2ban-ini.js';
import { ConfigError } from '../core/errors.js';

/**
 * Tags whose values come from the ban itself (or from a remote peer), never from the action file
 * or the operator's config: they are passed to the shell as positional parameters, as data.
 */
export const DATA_TAGS = ['ip', 'fid', 'ip-rev', 'name', 'bantime', 'family', 'time'] as const;

const MARK = '\u0000';
const UNRESOLVED = '\u0001';
const MAX_ROUNDS = 64;

export interface TagSource {
  config: Fail2banConfig;
  /** Family-specific section first (`Init?family=inet6`), then `Init`, then `Definition`. */
  family: 'inet4' | 'inet6';
  /** The operator's overrides of [Init] values (fail2ban's `action = x[port=ssh]`): config, not data. */
  init: Record<string, string>;
  /** Tag names that are data for this command (see {@link DATA_TAGS}), plus any extra data tags. */
  data: ReadonlySet<string>;
}

function lookup(src: TagSource, name: string): string | undefined {
  const key = name.toLowerCase();
  if (Object.hasOwn(src.init, key)) return src.init[key];
  const slash = key.indexOf('/');
  // `<section/option>` reads another section of the same file (iptables.conf's ipt_<type>).
  if (slash > 0) {
    const section = name.slice(0, slash);
    if (src.config.hasSection(section)) return src.config.get(section, name.slice(slash + 1));
    return undefined;
  }
  const sections = [...(src.family === 'inet6' ? ['Init?family=inet6'] : []), 'Init', 'Definition'];
  for (const s of sections) {
    if (src.config.hasSection(s) && src.config.keys(s, false).includes(key)) return src.config.get(s, key);
  }
  return undefined;
}

/**
 * Expands the action file's own tags, innermost first (`<ipt_<type>/_chain_rule>`), recursively,
 * as fail2ban does. Data tags are left as markers for {@link placeDataTags}; unknown tags stay as
 * written.
 */
export function expandTags(text: string, src: TagSource, where: { file: string; key: string }): string {
  let out = text;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let changed = false;
    out = out.replace(/<([^<>\s\u0000\u0001]+)>/g, (_whole, name: string) => {
      changed = true;
      if (src.data.has(name.toLowerCase())) return `${MARK}${name.toLowerCase()}${MARK}`;
      const value = lookup(src, name);
      return value ?? `${UNRESOLVED}${name}${UNRESOLVED}`;
    });
    if (!changed) return out.replace(/\u0001([^\u0001]*)\u0001/g, '<$1>');
  }
  throw new ConfigError(
    `tags nest more than ${MAX_ROUNDS} levels deep (a tag that refers to itself?)`,
    where,
  );
}

/**
 * Replaces each data-tag marker with a reference to a positional parameter, quoted for the shell
 * context it sits in, so the value is expanded as one word and never parsed as code: `"${N}"`
 * outside quotes, `${N}` inside double quotes, `'"${N}"'` inside single quotes. `param(name)`
 * returns N for that tag's value.
 */
export function placeDataTags(script: string, param: (name: string) => number): string {
  let out = '';
  let state: 'none' | 'single' | 'double' = 'none';
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === MARK) {
      const end = script.indexOf(MARK, i + 1);
      const n = param(script.slice(i + 1, end));
      out += state === 'none' ? `"\${${n}}"` : state === 'double' ? `\${${n}}` : `'"\${${n}}"'`;
      i = end;
      continue;
    }
    out += c;
    if (state === 'single') {
      if (c === "'") state = 'none';
    } else if (c === '\\') {
      // An escaped character is literal; a marker is never escapable (it is not shell text).
      const next = script[i + 1];
      if (next !== undefined && next !== MARK) {
        out += next;
        i++;
      }
    } else if (c === "'" && state === 'none') {
      state = 'single';
    } else if (c === '"') {
      state = state === 'double' ? 'none' : 'double';
    }
  }
  return out;
}
