import { addressOf, type MatchOut } from './compile.js';
import { requiredLiteral } from './literal.js';
import { expandPlaceholders } from './placeholders.js';
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
  literal: string;
}

/** fail2ban keeps 100 sessions for 5 minutes; a flood opens more, so rampart keeps more. */
export const MULTILINE_DEFAULTS = { sessions: 10_000, sessionTtl: 300 } as const;
/** Sources with a line buffer of their own; beyond this the buffers start over. */
const MAX_SOURCES = 1024;

export class MultilineStage {
  private readonly fail: Compiled[];
  private readonly ignore: RegExp[];
  private readonly pref: RegExp | undefined;
  private readonly maxlines: number;
  private readonly sessionCap: number;
  private readonly ttlMs: number;
  private readonly sessions = new Map<string, Session>();
  private readonly buffers = new Map<string, string[]>();
  private readonly skipGroups: string[][];

  constructor(
    rule: RuleSpec,
    spec: MultilineSpec,
    opts: { linear?: LinearMode; onWarning?: (m: string) => void },
  ) {
    this.maxlines = Math.max(1, Math.floor(spec.maxlines));
    // fail2ban compiles every regex of a buffering filter with MULTILINE: ^ and $ at line ends.
    const flags = this.maxlines > 1 ? 'm' : '';
    const where = (list: string, i: number) =>
      `rule "${rule.name}"${rule.origin ? ` (${rule.origin})` : ''} multiline ${list}[${i}]`;
    const compile = (p: string, w: string) =>
      compileUserRegex(expandPlaceholders(p).source, w, { ...opts, flags, shown: p });
    this.fail = spec.failregex.map((p, i) => {
      const source = expandPlaceholders(p).source;
      return { re: compile(p, where('failregex', i)), literal: flags === '' ? requiredLiteral(source) : '' };
    });
    this.skipGroups = this.fail.map(({ re }) =>
      Object.keys(new RegExp(`${re.source}|`).exec('')?.groups ?? {}).filter((g) => /^skiplines\d+$/.test(g)),
    );
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
    for (let i = 0; i < this.fail.length; i++) {
      const p = this.fail[i]!;
      if (p.literal !== '' && work.indexOf(p.literal) < 0) continue;
      const m = p.re.exec(work);
      if (m === null) continue;
      const matched = this.maxlines > 1 ? this.splitLines(m, lines, i) : null;
      if (this.ignore.length > 0) {
        const checked = matched === null ? work : `${matched.matched.join('\n')}\n`;
        if (this.anyIgnore(checked)) {
          if (matched !== null) this.buffers.set(source, matched.unmatched);
          return 'ignored';
        }
      }
      if (matched !== null) this.buffers.set(source, matched.unmatched);
      // The prefregex's groups (sshd's session id) with the failregex's on top, as fail2ban merges.
      const g = prefMatch?.groups ? { ...prefMatch.groups, ...defined(m.groups) } : (m.groups ?? {});
      let ip = addressOf(m) ?? (prefMatch === null ? null : addressOf(prefMatch));
      const mlfid = g.mlfid;
      if (mlfid === undefined) {
        if (g.nofail !== undefined || g.mlfgained !== undefined) return 'none';
        if (ip === null) return 'none';
        out.ip = ip;
        out.v4 = -1;
        return 'fail';
      }
      const verdict = this.merge(mlfid, g, ip, at);
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
    return 'none';
  }

  /** fail2ban's merge of a line into its session; returns what the line amounts to. */
  private merge(
    id: string,
    g: Record<string, string | undefined>,
    ip: string | null,
    at: number,
  ): { ip: string | undefined; nofail: boolean; gained: boolean; session: Session | undefined } {
    const gained = g.mlfgained !== undefined && g.mlfgained !== '';
    let nofail = gained || (g.nofail !== undefined && g.nofail !== '');
    const forget = g.mlfforget !== undefined && g.mlfforget !== '';
    const user = userOf(g);
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
  private splitLines(m: RegExpExecArray, lines: string[], index: number) {
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
    for (const name of this.skipGroups[index]!) {
      const v = m.groups?.[name];
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

/** `user`, else the first `alt_user`/`alt_user_N` that captured (fail2ban's alternate names). */
function userOf(g: Record<string, string | undefined>): string | undefined {
  if (g.user) return g.user;
  let best: string | undefined;
  for (const k in g) if (g[k] && /^alt_user(?:_\d+)?$/.test(k) && (best === undefined || k < best)) best = k;
  return best === undefined ? undefined : g[best];
}

function defined(groups: Record<string, string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (groups) for (const k in groups) if (groups[k] !== undefined) out[k] = groups[k]!;
  return out;
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i >= 0 && i < to; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
