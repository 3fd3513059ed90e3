import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { fsReason } from '../core/fs-error.js';

/** One option's raw (uninterpolated) value and where it was written. */
export interface IniEntry {
  value: string;
  file: string;
  line: number;
}

type Section = Map<string, IniEntry>;

/** One file as parsed, before includes are merged. */
export interface IniFile {
  file: string;
  /** Section name → options; `DEFAULT` is kept here as a section too. */
  sections: Map<string, Section>;
}

const DEFAULT = 'DEFAULT';
// Python's configparser stops at 10 levels; a deeper chain is almost certainly a loop.
const MAX_DEPTH = 20;
const INTERP = /%(%|\(([^)]*)\)s)/g;

/**
 * Parses one file in fail2ban's INI dialect (Python configparser as fail2ban configures it):
 * `[section]` headers, `key = value` or `key: value`, continuation lines indented deeper than
 * their option, blank lines inside a value kept, full-line `#`/`;` comments, inline comments only
 * after whitespace + `;` (none with `inlineComments: false`), option names case-insensitive (lower-cased), duplicates refused.
 */
export function parseFail2banIni(
  text: string,
  file: string,
  opts: { inlineComments?: boolean } = {},
): IniFile {
  // Python's own configparser default (no inline comments at all), for tools other than fail2ban.
  const strip = opts.inlineComments === false ? (line: string) => line : stripInlineComment;
  const sections = new Map<string, Section>();
  let current: Section | undefined;
  let currentName = '';
  let option: { key: string; indent: number; lines: string[]; entry: IniEntry } | undefined;

  const finish = () => {
    if (!option) return;
    // configparser drops trailing blank lines of a multi-line value.
    option.entry.value = option.lines.join('\n').replace(/\s+$/, '');
    option = undefined;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const stripped = raw.trim();
    if (stripped.startsWith('#') || stripped.startsWith(';')) continue;
    const value = strip(raw).trim();
    const indent = raw.length - raw.trimStart().length;
    if (value === '') {
      if (option && stripped === '') option.lines.push('');
      continue;
    }
    if (option && indent > option.indent) {
      option.lines.push(value);
      continue;
    }
    finish();
    const header = /^\[(.+)\]$/.exec(value);
    if (header) {
      currentName = header[1]!;
      if (sections.has(currentName)) {
        throw new ConfigError(`section [${currentName}] appears twice in this file`, { file, line: lineNo });
      }
      current = new Map();
      sections.set(currentName, current);
      continue;
    }
    const kv = /^(.*?)\s*[=:]\s*(.*)$/.exec(value);
    if (!kv || kv[1] === '') {
      throw new ConfigError(
        `expected "key = value" or a [section] header, found ${JSON.stringify(clip(value))}`,
        {
          file,
          line: lineNo,
        },
      );
    }
    if (!current) {
      throw new ConfigError('option before the first [section] header', { file, line: lineNo, key: kv[1] });
    }
    const key = kv[1]!.toLowerCase();
    if (current.has(key)) {
      throw new ConfigError(`option appears twice in section [${currentName}]`, { file, line: lineNo, key });
    }
    const entry: IniEntry = { value: '', file, line: lineNo };
    current.set(key, entry);
    option = { key, indent, lines: [kv[2]!], entry };
  }
  finish();
  return { file, sections };
}

/** configparser with inline_comment_prefixes=";" strips from a `;` that follows whitespace. */
function stripInlineComment(line: string): string {
  const m = /\s;/.exec(line);
  return m ? line.slice(0, m.index) : line;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/**
 * fail2ban's configuration as read from one file plus everything it pulls in: `[INCLUDES]`
 * `before`/`after` files (relative to the including file's folder), a `.local` next to every
 * `.conf`, later files overriding earlier ones per option, `[DEFAULT]` visible from every section.
 * `get()` interpolates `%(name)s`, `%(section/name)s`, `%(default/name)s` and `%(known/name)s`
 * (the value the option had before the file that overrode it).
 */
export class Fail2banConfig {
  /** Files read, in the order their values were applied. */
  readonly files: string[];
  private readonly sectionMap = new Map<string, Section>();
  private readonly known = new Map<string, Section>();

  constructor(parsed: IniFile[]) {
    this.files = parsed.map((p) => p.file);
    for (const p of parsed) {
      for (const [name, options] of p.sections) {
        const existing = this.sectionMap.get(name);
        if (!existing) {
          this.sectionMap.set(name, new Map(options));
          continue;
        }
        let known = this.known.get(name);
        if (!known) {
          known = new Map();
          this.known.set(name, known);
        }
        for (const [key, entry] of options) {
          const before = existing.get(key);
          if (before) known.set(key, before);
          existing.set(key, entry);
        }
      }
    }
  }

  sections(): string[] {
    return [...this.sectionMap.keys()].filter((s) => s !== DEFAULT);
  }

  hasSection(section: string): boolean {
    return this.sectionMap.has(section);
  }

  /** Option names of a section, optionally with those inherited from `[DEFAULT]`. */
  keys(section: string, withDefault = true): string[] {
    const own = [...(this.sectionMap.get(section)?.keys() ?? [])];
    if (!withDefault || section === DEFAULT) return own;
    return [...new Set([...own, ...(this.sectionMap.get(DEFAULT)?.keys() ?? [])])];
  }

  /** The raw value and its location: the section's own, else `[DEFAULT]`'s. */
  raw(section: string, key: string): IniEntry | undefined {
    const k = key.toLowerCase();
    return this.sectionMap.get(section)?.get(k) ?? this.sectionMap.get(DEFAULT)?.get(k);
  }

  /**
   * The interpolated value of `key` in `section` (falling back to `[DEFAULT]`), or undefined when
   * absent. `vars` take precedence over the file's values, as fail2ban's jail options do over a
   * filter's `[Definition]`. A name written `section/key` reads that section.
   */
  get(section: string, key: string, vars: Record<string, string> = {}): string | undefined {
    const k = key.toLowerCase();
    const entry = this.lookup(section, k, vars);
    if (!entry) return undefined;
    return this.interpolate(entry, this.contextOf(section, k), vars, [k]);
  }

  /** Interpolates arbitrary text as if it were a value of `section` written at `where`. */
  interpolateText(
    text: string,
    section: string,
    where: { file: string; line: number },
    vars: Record<string, string> = {},
  ) {
    return this.interpolate({ value: text, ...where }, section, vars, []);
  }

  private lookup(section: string, key: string, vars: Record<string, string>): IniEntry | undefined {
    // configparser's `%(__name__)s` is the section's own name (jail.conf: `filter = %(__name__)s`).
    if (key === '__name__') return { value: section.replace(/%/g, '%%'), file: '<section>', line: 0 };
    // Options passed in are final values: their `%` is literal, not interpolation.
    if (Object.hasOwn(vars, key))
      return { value: vars[key]!.replace(/%/g, '%%'), file: '<options>', line: 0 };
    const slash = key.indexOf('/');
    if (slash > 0) {
      const sec = key.slice(0, slash);
      const opt = key.slice(slash + 1);
      if (sec === 'known') {
        return (
          this.known.get(section)?.get(opt) ??
          this.known.get(DEFAULT)?.get(opt) ??
          this.sectionMap.get(DEFAULT)?.get(opt)
        );
      }
      if (sec === 'default') return this.sectionMap.get(DEFAULT)?.get(opt);
      const named = this.sectionMap.get(key.slice(0, slash)) ?? this.findSectionCaseless(sec);
      if (named) return named.get(opt) ?? this.sectionMap.get(DEFAULT)?.get(opt);
    }
    return this.raw(section, key);
  }

  /** `other/key` is interpolated in [other], as fail2ban does; anything else in `section`. */
  private contextOf(section: string, key: string): string {
    const slash = key.indexOf('/');
    if (slash <= 0) return section;
    const sec = key.slice(0, slash);
    if (sec === 'known' || sec === 'default') return section;
    if (this.sectionMap.has(sec)) return sec;
    for (const name of this.sectionMap.keys()) if (name.toLowerCase() === sec) return name;
    return section;
  }

  private findSectionCaseless(lower: string): Section | undefined {
    for (const [name, s] of this.sectionMap) if (name.toLowerCase() === lower) return s;
    return undefined;
  }

  private interpolate(
    entry: IniEntry,
    section: string,
    vars: Record<string, string>,
    stack: string[],
  ): string {
    if (!entry.value.includes('%')) return entry.value;
    const where = { file: entry.file, line: entry.line, key: stack[stack.length - 1] };
    const rest = entry.value.replace(INTERP, '');
    if (rest.includes('%')) {
      throw new ConfigError(`a lone "%" must be written "%%" (or %(name)s for interpolation)`, where);
    }
    return entry.value.replace(INTERP, (_m, body: string, name: string | undefined) => {
      if (body === '%') return '%';
      const key = name!.toLowerCase();
      if (stack.includes(key) || stack.length > MAX_DEPTH) {
        throw new ConfigError(`%(${name})s refers back to itself (${[...stack, key].join(' → ')})`, where);
      }
      // `known/x` inside x's own new value must read the older x, not loop on itself.
      const target = this.lookup(section, key, vars);
      if (!target) throw new ConfigError(`%(${name})s is not defined in [${section}] or [DEFAULT]`, where);
      return this.interpolate(target, this.contextOf(section, key), vars, [...stack, key]);
    });
  }
}

/**
 * Reads a fail2ban configuration file with everything it includes, as fail2ban does: for each
 * file, its `[INCLUDES] before` files first, then the file, then its `.local`, then its `after`
 * files. A missing `.local` (or an `after = x.local` that does not exist) is normal and skipped;
 * any other missing file is an error naming the file and line that asked for it.
 */
export function readFail2banConfig(path: string | string[]): Fail2banConfig {
  const paths = Array.isArray(path) ? path : [path];
  for (const p of paths) if (!existsSync(p)) throw new ConfigError('file not found', { file: p });
  const order: IniFile[] = [];
  // A `.local` listed explicitly (jail.local after jail.d/*.conf) keeps its place in the list.
  for (const p of paths) collect(p, [], order, undefined, new Set(paths));
  return new Fail2banConfig(order);
}

function collect(
  file: string,
  seen: string[],
  out: IniFile[],
  from: { file: string; line: number } | undefined,
  listed: ReadonlySet<string> = new Set(),
) {
  const variants = [file];
  const local = file.replace(/\.conf$/, '.local');
  if (local !== file && !listed.has(local) && existsSync(local)) variants.push(local);
  for (const f of variants) {
    if (seen.includes(f)) continue;
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      const code = fsReason(err);
      if (from) throw new ConfigError(`cannot read included file ${f}: ${code}`, { ...from, key: 'include' });
      throw new ConfigError(`cannot read: ${code}`, { file: f }, { cause: err });
    }
    const parsed = parseFail2banIni(text, f);
    const includes = parsed.sections.get('INCLUDES');
    const next = [...seen, f];
    for (const entry of splitList(includes?.get('before'))) includeOne(f, entry, next, out);
    out.push(parsed);
    for (const entry of splitList(includes?.get('after'))) includeOne(f, entry, next, out);
  }
}

function includeOne(parent: string, entry: { name: string; line: number }, seen: string[], out: IniFile[]) {
  const target = isAbsolute(entry.name) ? entry.name : join(dirname(parent), entry.name);
  if (seen.includes(target)) return;
  // fail2ban silently skips includes it cannot find; `after = common.local` relies on that.
  if (!existsSync(target)) {
    if (target.endsWith('.local')) return;
    throw new ConfigError(`included file not found: ${target}`, {
      file: parent,
      line: entry.line,
      key: 'INCLUDES',
    });
  }
  collect(target, seen, out, { file: parent, line: entry.line });
}

function splitList(entry: IniEntry | undefined): { name: string; line: number }[] {
  if (!entry) return [];
  return entry.value
    .split('\n')
    .map((name, i) => ({ name: name.trim(), line: entry.line + i }))
    .filter((x) => x.name !== '');
}
