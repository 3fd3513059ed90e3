import { type CaptureMap, captureMap, hasTopLevelBar, withoutCaptures } from './capture-map.js';
import { canonicalAddress, type MatchOut } from './compile.js';
import { requiredLiteral } from './literal.js';
import { expandPlaceholders, isAddressGroup } from './placeholders.js';
import { compileUserRegex, type LinearMode } from './regex-safety.js';
import type { MultilineSpec, RuleSpec } from './rule.js';

/**
 * The stateful stage of a rule that needs more than one line to decide (fail2ban's `maxlines`
 * buffer and `<F-MLFID>` sessions). The engine calls it instead of the compiled rule, and only
 * for rules that carry `multiline`, so single-line rules keep their stateless hot path.
 *
 * Semantics follow fail2ban's filter (facts taken from fail2ban 1.0's `findFailure` and
 * `_mergeFailure`): the failregexes are tried in order and the first that matches decides; a line
 * whose failregex captures a session id (`mlfid`) but no address takes the address the session
 * saw; `nofail` lines only record the session; `mlfforget` drops it; `mlfgained` (a successful
 * login) forgives the address unless the session failed before without an address ("pending") or
 * saw more than one user, in which case the line counts as a failure.
 */
export type MultilineKind = 'fail' | 'good' | 'ignored' | 'none';

/** A session (`<F-MLFID>` value) as much of it as the decisions need. */
interface Session {
  /** Log time (ms) after which the session is forgotten. */
  expires: number;
  ip: string | undefined;
  /** First user seen; `users > 1` cancels nofail/gained as in fail2ban. */
  user: string | undefined;
  users: number;
  /** A failure was seen while the session had no address yet: the next address line counts. */
  pending: boolean;
}

interface Compiled {
  re: RegExp;
  map: CaptureMap;
  /** Text every match starts with (after `^`), checked with startsWith; '' = unknown. */
  lead: string;
  /** Text every match contains, checked with indexOf when there is no lead; '' = none known. */
  literal: string;
}

/** fail2ban keeps 100 sessions for 5 minutes; a flood opens more, so rampart keeps more. */
export const MULTILINE_DEFAULTS = { sessions: 10_000, sessionTtl: 300 } as const;
/** Sources with a line buffer of their own; beyond this the buffers start over. */
const MAX_SOURCES = 1024;
/**
 * Characters a line buffer may hold (fail2ban has no such cap): every line re-runs the filter's
 * regexes over the whole buffer, so twenty hostile 16 KiB lines would cost milliseconds per line.
 * Real multi-line records (slapd, mongodb) are a few KiB; the oldest lines go first.
 */
const MAX_BUFFER_CHARS = 64 * 1024;

export class MultilineStage {
  private readonly fail: Compiled[];
  private readonly ignore: RegExp[];
  private readonly pref: RegExp | undefined;
  private readonly maxlines: number;
  private readonly sessionCap: number;
  private readonly ttlMs: number;
  private readonly sessions = new Map<string, Session>();
  private readonly buffers = new Map<string, string[]>();
  /**
   * With one line and every failregex anchored at `^`, all of them merged into one regex tried
   * once per line: its alternatives are tried in order at the line start, so the first that
   * matches is the failregex fail2ban would pick. The union captures nothing but an empty group
   * at the start of each alternative, which tells which one matched; that failregex then runs
   * alone for its captures (a union with every capture made a 100-slot array per line).
   */
  private readonly any: RegExp | undefined;
  /** The match being read and where its failregex's captures start in it (0 = its own regex). */
  private m: RegExpExecArray | null = null;
  private shift = 0;

  constructor(
    rule: RuleSpec,
    spec: MultilineSpec,
    opts: { linear?: LinearMode; onWarning?: (m: string) => void },
  ) {
    this.maxlines = Math.max(1, Math.floor(spec.maxlines));
    // fail2ban compiles every regex of a buffering filter with MULTILINE: ^ and $ at line ends.
    const single = this.maxlines === 1;
    const flags = single ? '' : 'm';
    const where = (list: string, i: number) =>
      `rule "${rule.name}"${rule.origin ? ` (${rule.origin})` : ''} multiline ${list}[${i}]`;
    const compile = (p: string, w: string) =>
      compileUserRegex(expandPlaceholders(p).source, w, { ...opts, flags, shown: p });
    this.fail = spec.failregex.map((p, i) => {
      const map = captureMap(expandPlaceholders(p).source);
      const single = flags === '';
      return {
        re: compileUserRegex(map.source, where('failregex', i), { ...opts, flags, shown: p }),
        map,
        lead: single ? leadingLiteral(map.source) : '',
        literal: single ? requiredLiteral(map.source) : '',
      };
    });
    this.any = single ? anchoredUnion(this.fail.map((f) => f.map.source)) : undefined;
    this.ignore = spec.ignoreregex.map((p, i) => compile(p, where('ignoreregex', i)));
    this.pref = spec.prefregex === undefined ? undefined : compile(spec.prefregex, where('prefregex', 0));
    this.sessionCap = Math.max(1, spec.sessions ?? MULTILINE_DEFAULTS.sessions);
    this.ttlMs = (spec.sessionTtl ?? MULTILINE_DEFAULTS.sessionTtl) * 1000;
  }

  /** Sessions held (for tests and stats). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Classifies one line (its date already cut) of `source` at log time `at`. */
  classify(text: string, source: string, at: number, out: MatchOut): MultilineKind {
    let lines: string[];
    let buf: string;
    if (this.maxlines > 1) {
      lines = this.buffer(source);
      lines.push(text);
      if (lines.length > this.maxlines) lines.splice(0, lines.length - this.maxlines);
      let chars = 0;
      for (let i = 0; i < lines.length; i++) chars += lines[i]!.length + 1;
      while (chars > MAX_BUFFER_CHARS && lines.length > 1) chars -= lines.shift()!.length + 1;
      buf = `${lines.join('\n')}\n`;
    } else {
      lines = [text];
      buf = text;
    }
    // fail2ban's shortcut: with few ignoreregexes, one matching anywhere drops the line early.
    if (this.ignore.length > 0 && this.ignore.length < this.fail.length - 2 && this.anyIgnore(buf)) {
      return 'ignored';
    }
    let prefMatch: RegExpExecArray | null = null;
    let work = buf;
    if (this.pref !== undefined) {
      prefMatch = this.pref.exec(buf);
      if (prefMatch === null) return 'none';
      const content = prefMatch.groups?.content;
      if (content) {
        work = content;
        // fail2ban replaces its buffer by the content once a prefregex matched.
        if (this.maxlines > 1) this.buffers.set(source, [content]);
      }
    }
    const i = this.any !== undefined ? this.matchAny(work) : this.matchEach(work);
    if (i < 0) return 'none';
    const m = this.m!;
    const map = this.fail[i]!.map;
    const matched = this.maxlines > 1 ? this.splitLines(m, lines, map) : null;
    if (this.ignore.length > 0) {
      const checked = matched === null ? work : `${matched.matched.join('\n')}\n`;
      if (this.anyIgnore(checked)) {
        if (matched !== null) this.buffers.set(source, matched.unmatched);
        return 'ignored';
      }
    }
    if (matched !== null) this.buffers.set(source, matched.unmatched);
    // The prefregex's groups (sshd's session id) under the failregex's, as fail2ban merges them.
    const pg = prefMatch?.groups ?? NO_GROUPS;
    const get = (name: string): string | undefined => {
      const at = map.names.get(name);
      const v = at === undefined ? undefined : m[at + this.shift];
      return v ?? pg[name];
    };
    let ip = this.address(m, map) ?? (prefMatch === null ? null : addressOfGroups(pg));
    const mlfid = get('mlfid');
    if (mlfid === undefined) {
      if (get('nofail') !== undefined || get('mlfgained') !== undefined) return 'none';
      if (ip === null) return 'none';
      out.ip = ip;
      out.v4 = -1;
      return 'fail';
    }
    let user = get('user');
    if (!user) for (const k of map.altUsers) user ||= m[k + this.shift];
    const verdict = this.merge(mlfid, {
      gained: !!get('mlfgained'),
      nofail: !!get('nofail'),
      forget: !!get('mlfforget'),
      user: user || undefined,
      ip,
      at,
    });
    ip = verdict.ip ?? null;
    if (verdict.nofail) {
      if (verdict.gained && ip !== null) {
        out.ip = ip;
        out.v4 = -1;
        return 'good';
      }
      return 'none';
    }
    if (ip === null) {
      // Waiting for the session's address: the failure is counted when it shows.
      if (verdict.session !== undefined) verdict.session.pending = true;
      return 'none';
    }
    out.ip = ip;
    out.v4 = -1;
    return 'fail';
  }

  /** The merged regex's verdict: which failregex matched first, or -1. */
  private matchAny(work: string): number {
    const u = this.any!.exec(work);
    if (u === null) return -1;
    for (let i = 1; i < u.length; i++) {
      if (u[i] === undefined) continue;
      const m = this.fail[i - 1]!.re.exec(work);
      if (m === null) return -1;
      this.m = m;
      this.shift = 0;
      return i - 1;
    }
    return -1;
  }

  /** fail2ban's own loop: each failregex searched in turn. */
  private matchEach(work: string): number {
    for (let i = 0; i < this.fail.length; i++) {
      const p = this.fail[i]!;
      if (p.lead !== '') {
        if (!work.startsWith(p.lead)) continue;
      } else if (p.literal !== '' && work.indexOf(p.literal) < 0) continue;
      const m = p.re.exec(work);
      if (m === null) continue;
      this.m = m;
      this.shift = 0;
      return i;
    }
    return -1;
  }

  /** The first address capture that took part decides (as `addressOf` in compile.ts). */
  private address(m: RegExpExecArray, map: CaptureMap): string | null {
    for (const k of map.addresses) {
      const raw = m[k + this.shift];
      if (raw !== undefined && raw.length > 0) return canonicalAddress(raw);
    }
    return null;
  }

  /** fail2ban's merge of a line into its session; returns what the line amounts to. */
  private merge(
    id: string,
    line: {
      gained: boolean;
      nofail: boolean;
      forget: boolean;
      user: string | undefined;
      ip: string | null;
      at: number;
    },
  ): { ip: string | undefined; nofail: boolean; gained: boolean; session: Session | undefined } {
    const { gained, forget, user, ip, at } = line;
    let nofail = gained || line.nofail;
    let s = this.sessions.get(id);
    if (s !== undefined && s.expires <= at) {
      this.sessions.delete(id);
      s = undefined;
    }
    let pending = false;
    let users = 0;
    let sessionIp: string | undefined;
    let kept: Session | undefined;
    if (s !== undefined) {
      if (user !== undefined && user !== s.user) {
        if (s.user === undefined) s.user = user;
        s.users = Math.min(s.users + 1, 2);
      }
      users = s.users;
      // A gained login resets what failed before without an address (users are kept).
      if (gained) s.pending = false;
      if (ip !== null) s.ip = ip;
      pending = s.pending;
      s.pending = false;
      sessionIp = s.ip;
      if (forget) this.sessions.delete(id);
      else kept = s;
    } else {
      sessionIp = ip ?? undefined;
      if (!forget) {
        kept = {
          expires: at + this.ttlMs,
          ip: sessionIp,
          user,
          users: user === undefined ? 0 : 1,
          pending: false,
        };
        this.remember(id, kept, at);
      }
    }
    let isGained = gained;
    if (pending || users > 1) {
      nofail = false;
      isGained = false;
    }
    return { ip: sessionIp, nofail, gained: isGained, session: kept };
  }

  /** Adds a session; when full, the oldest go first (expired ones regardless), as in fail2ban. */
  private remember(id: string, s: Session, at: number): void {
    const map = this.sessions;
    if (map.size >= this.sessionCap) {
      for (const [k, v] of map) {
        map.delete(k);
        if (v.expires > at && map.size < this.sessionCap) break;
      }
    }
    map.set(id, s);
  }

  private anyIgnore(text: string): boolean {
    for (let i = 0; i < this.ignore.length; i++) if (this.ignore[i]!.test(text)) return true;
    return false;
  }

  private buffer(source: string): string[] {
    let b = this.buffers.get(source);
    if (b === undefined) {
      if (this.buffers.size >= MAX_SOURCES) this.buffers.clear();
      b = [];
      this.buffers.set(source, b);
    }
    return b;
  }

  /**
   * The buffered lines a match covers and the rest (kept for later matches): lines the match
   * spans, minus the ones a `<SKIPLINES>` gap stepped over, which stay in the buffer.
   */
  private splitLines(m: RegExpExecArray, lines: string[], map: CaptureMap) {
    const s = m.input;
    const start = m.index;
    const end = start + m[0].length;
    const first = s.lastIndexOf('\n', start) + 1;
    const lastNl = s.indexOf('\n', Math.max(first, end - 1));
    const stop = lastNl < 0 ? s.length : lastNl + 1;
    const from = countNewlines(s, 0, first);
    const to = countNewlines(s, 0, stop);
    const matched = lines.slice(from, to);
    const unmatched = lines.slice(0, from);
    const skipped: string[] = [];
    for (const k of map.skips) {
      const v = m[k];
      if (v) skipped.push(...v.split('\n').filter((l, i, a) => i < a.length - 1 || l !== ''));
    }
    let n = 0;
    for (const line of skipped) {
      const at = matched.indexOf(line, n);
      if (at < 0) continue;
      unmatched.push(...matched.splice(at, 1));
      n = at;
    }
    unmatched.push(...lines.slice(to));
    return { matched, unmatched };
  }
}

const NO_GROUPS: Record<string, string | undefined> = Object.freeze({});

/** The literal text right after a leading `^` (up to the first regex syntax), else ''. */
function leadingLiteral(source: string): string {
  const m = /^\^((?:[^\\^$.|?*+()[\]{}]|\\[^\w])*)/.exec(source);
  if (m === null || hasTopLevelBar(source)) return '';
  let lead = m[1]!.replace(/\\(.)/g, '$1');
  // A quantifier after the run applies to its last character, which is then not required.
  const next = source[m[0].length];
  if (next === '?' || next === '*' || next === '{') lead = lead.slice(0, -1);
  return lead;
}

/** Address of a prefregex match from its named groups (the prefregex keeps its names). */
function addressOfGroups(g: Record<string, string | undefined>): string | null {
  for (const name in g) {
    const raw = g[name];
    if (raw === undefined || raw.length === 0 || !isAddressGroup(name)) continue;
    return canonicalAddress(raw);
  }
  return null;
}

/** `^(?:()a|()b|...)` of sources that all start with `^`, with no other capture. */
function anchoredUnion(sources: string[]): RegExp | undefined {
  if (sources.length < 2 || sources.some((s) => !s.startsWith('^') || hasTopLevelBar(s))) return undefined;
  // Each source compiled on its own already, warnings included; the union adds no new construct.
  return new RegExp(`^(?:${sources.map((s) => `()${withoutCaptures(s).slice(1)}`).join('|')})`);
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i >= 0 && i < to; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
