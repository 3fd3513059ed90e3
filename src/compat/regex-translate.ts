import { applyEdits, classEnd, type Edit, parseRegexTree } from './regex-tree.js';

/** Which regex language a pattern was written for. */
export type RegexDialect = 'python' | 'perl';

/** A pattern construct with no JavaScript equivalent; callers add file, line and key. */
export class UntranslatableRegex extends Error {}

interface Flags {
  i: boolean;
  s: boolean;
  m: boolean;
  x: boolean;
}

// Address placeholders pass through untouched (the engine expands them), even under (?i) or (?x).
const PLACEHOLDER = /^(?:<HOST>|<ADDR>|<IP4>|<IP6>|<DNS>|<CIDR>|<SUBNET>|\{IP_NUMBER\})/;
// Characters that must stay escaped in JavaScript (also in `u` mode); other escaped punctuation
// (`\ `, `\'`, `\:`, `\<`...) is a plain literal and is written unescaped so `u` mode accepts it.
const SYNTAX = '^$\\.*+?()[]{}|/';
const KEEP_ESCAPES = 'dDwWsSbBnrtfv0123456789';

/**
 * Translates a Python (fail2ban) or Perl (banban, syslog-blacklist) regex into JavaScript source
 * that means the same on single log lines, without needing regex flags: `(?P<n>` → `(?<n>`,
 * `(?P=n)` → `\k<n>`, `\A`/`\Z`/`\z` → `^`/`$`, inline flags `(?i)`, `(?i:...)`, `(?s)`, `(?m)`,
 * `(?x)` (global at the start, scoped inside a group) rewritten into the pattern itself
 * (`a` → `[aA]`, `.` → `[\s\S]`...), comments `(?#...)` dropped, lone `{`/`}`/`]` escaped,
 * Python's `{,n}` → `{0,n}`. Throws UntranslatableRegex for what JavaScript cannot express
 * (conditionals, atomic groups, possessive quantifiers, recursion, `\G`, `\K`, POSIX classes...).
 */
export function translateRegex(src: string, dialect: RegexDialect): string {
  const t = new Translator(src, dialect);
  return reduceNestedQuantifiers(t.run());
}

// One repeated atom: a class, an escape, or a plain character, then `*` or `+`.
const STARRED_ATOM = /^(?:\[(?:\\.|[^\]\\])*\]|\\[dDwWsS]|[^\\()[\]|*+?{}^$])[*+]$/;

/**
 * `(?:a*|b)*` matches the same text as `(?:a|b)*` but backtracks exponentially when a match fails
 * (fail2ban's rfc5424 prefix has `(?:[^\]"]*|"[^"]*")*`, which hangs V8 on a bracketed
 * structured-data field). Inside a repeated group, an alternative that is a single repeated atom
 * loses its own repetition; the language is unchanged.
 */
export function reduceNestedQuantifiers(js: string): string {
  const tree = parseRegexTree(js);
  const edits: Edit[] = [];
  for (const g of tree.groups) {
    // Only under `*`: `(?:a*|b)+` also matches the empty string, `(?:a|b)+` does not.
    if (!g.quantifier.startsWith('*') || g.kind === 'look' || g.kind === 'cond') continue;
    const starts = [g.bodyStart, ...g.bars.map((b) => b + 1)];
    const ends = [...g.bars, g.close];
    starts.forEach((from, i) => {
      const branch = js.slice(from, ends[i]);
      if (STARRED_ATOM.test(branch)) edits.push({ start: ends[i]! - 1, end: ends[i]!, text: '' });
    });
  }
  return edits.length > 0 ? applyEdits(js, edits) : js;
}

class Translator {
  private out = '';
  private i = 0;
  private readonly stack: Flags[] = [];
  private flags: Flags = { i: false, s: false, m: false, x: false };

  constructor(
    private readonly src: string,
    private readonly dialect: RegexDialect,
  ) {}

  run(): string {
    const s = this.src;
    while (this.i < s.length) {
      const c = s[this.i]!;
      const ph = c === '<' || c === '{' ? PLACEHOLDER.exec(s.slice(this.i, this.i + 12)) : null;
      if (ph) {
        this.out += ph[0];
        this.i += ph[0].length;
      } else if (c === '\\') this.escape();
      else if (c === '[') this.charClass();
      else if (c === '(') this.group();
      else if (c === ')') {
        const prev = this.stack.pop();
        if (!prev) throw new UntranslatableRegex(`unbalanced ")" at offset ${this.i}`);
        this.flags = prev;
        this.out += ')';
        this.i++;
        this.quantifierTail();
      } else if (c === '{') this.brace();
      else if (c === '}' || c === ']') {
        this.out += `\\${c}`;
        this.i++;
      } else if (c === '*' || c === '+' || c === '?') {
        this.out += c;
        this.i++;
        this.quantifierTail();
      } else if (c === '.') {
        this.out += this.flags.s ? '[\\s\\S]' : '.';
        this.i++;
      } else if (c === '^' && this.flags.m) {
        this.out += '(?<=^|\\n)';
        this.i++;
      } else if (c === '$' && this.flags.m) {
        this.out += '(?=\\n|$)';
        this.i++;
      } else if (this.flags.x && /\s/.test(c)) {
        this.i++;
      } else if (this.flags.x && c === '#') {
        const nl = s.indexOf('\n', this.i);
        this.i = nl < 0 ? s.length : nl + 1;
      } else {
        this.out += this.flags.i ? caseless(c) : c;
        this.i++;
      }
    }
    if (this.stack.length > 0) throw new UntranslatableRegex('unbalanced "(": a group is never closed');
    return this.out;
  }

  /** After a quantifier: lazy `?` is fine, possessive `+` has no JavaScript form. */
  private quantifierTail() {
    const n = this.src[this.i];
    if (n === '?') {
      this.out += '?';
      this.i++;
    } else if (n === '+' && /[*+?}]$/.test(this.out)) {
      throw new UntranslatableRegex('possessive quantifiers (*+, ++, ?+) are not supported');
    }
  }

  private brace() {
    const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(this.src.slice(this.i, this.i + 30));
    if (m && (m[1] !== '' || (m[2] && m[3] !== ''))) {
      this.out += `{${m[1] === '' ? '0' : m[1]}${m[2] ?? ''}${m[3] ?? ''}}`;
      this.i += m[0].length;
      this.quantifierTail();
      return;
    }
    this.out += '\\{';
    this.i++;
  }

  private escape() {
    const s = this.src;
    const n = s[this.i + 1];
    if (n === undefined) throw new UntranslatableRegex('pattern ends with a lone backslash');
    this.i += 2;
    if (n === 'A') this.out += '^';
    else if (n === 'Z') this.out += this.dialect === 'perl' ? '(?=\\n?$)' : '$';
    else if (n === 'z' && this.dialect === 'perl') this.out += '$';
    else if (n === 'h' && this.dialect === 'perl') this.out += '[\\t ]';
    else if (n === 'H' && this.dialect === 'perl') this.out += '[^\\t ]';
    else if (n === 'e' && this.dialect === 'perl') this.out += '\\x1b';
    else if (n === 'a') this.out += '\\x07';
    else if (n === 'x') this.out += this.hexEscape();
    else if (n === 'u' && /^[0-9a-fA-F]{4}/.test(s.slice(this.i, this.i + 4))) {
      this.out += `\\u${s.slice(this.i, this.i + 4)}`;
      this.i += 4;
    } else if (n === 'c' && /[A-Za-z]/.test(s[this.i] ?? '')) {
      this.out += `\\c${s[this.i]}`;
      this.i++;
    } else if (n === 'k' || (n === 'g' && this.dialect === 'perl')) this.out += this.backref(n);
    else if (KEEP_ESCAPES.includes(n)) this.out += `\\${n}`;
    else if (/[A-Za-z]/.test(n))
      throw new UntranslatableRegex(`the escape \\${n} has no JavaScript equivalent`);
    else if (SYNTAX.includes(n)) this.out += `\\${n}`;
    else this.out += n;
  }

  private hexEscape(): string {
    const s = this.src;
    const braced = /^\{([0-9a-fA-F]{1,4})\}/.exec(s.slice(this.i, this.i + 7));
    if (braced) {
      this.i += braced[0].length;
      return `\\u${braced[1]!.padStart(4, '0')}`;
    }
    const hex = /^[0-9a-fA-F]{2}/.exec(s.slice(this.i, this.i + 2));
    if (!hex) throw new UntranslatableRegex('\\x must be followed by two hex digits');
    this.i += 2;
    return `\\x${hex[0]}`;
  }

  /** Perl/Python back-references by name or number: `\k<n>`, `\k{n}`, `\g{n}`, `\g1`. */
  private backref(kind: string): string {
    const m = /^(?:<(\w+)>|\{(-?\w+)\}|'(\w+)'|(-?\d+))/.exec(this.src.slice(this.i, this.i + 40));
    if (!m) throw new UntranslatableRegex(`malformed back-reference \\${kind}`);
    this.i += m[0].length;
    const ref = m[1] ?? m[2] ?? m[3] ?? m[4]!;
    if (ref.startsWith('-'))
      throw new UntranslatableRegex('relative back-references (\\g-1) are not supported');
    return /^\d+$/.test(ref) ? `\\${ref}` : `\\k<${ref}>`;
  }

  private charClass() {
    const s = this.src;
    const end = classEnd(s, this.i);
    if (end < 0) throw new UntranslatableRegex('unterminated character class "["');
    let j = this.i + 1;
    let out = '[';
    if (s[j] === '^') {
      out += '^';
      j++;
    }
    if (s[j] === ']') {
      out += '\\]';
      j++;
    }
    let extra = '';
    for (; j < end; j++) {
      const c = s[j]!;
      if (c === '[' && s[j + 1] === ':')
        throw new UntranslatableRegex('POSIX classes like [:alpha:] are not supported');
      if (c === '\\') {
        const n = s[j + 1]!;
        j++;
        if (n === 'h' && this.dialect === 'perl') out += '\\t ';
        else if (n === 'x' || n === 'u' || n === 'c') {
          this.i = j + 1;
          if (n === 'x') out += this.hexEscape();
          else if (n === 'c') {
            out += `\\c${s[this.i]}`;
            this.i += 1;
          } else {
            out += `\\u${s.slice(this.i, this.i + 4)}`;
            this.i += 4;
          }
          j = this.i - 1;
        } else if (KEEP_ESCAPES.includes(n) && n !== 'b') out += `\\${n}`;
        else if (n === 'b') out += '\\x08';
        else if (/[A-Za-z]/.test(n))
          throw new UntranslatableRegex(`the escape \\${n} has no JavaScript equivalent`);
        else out += `\\${n}`;
        continue;
      }
      if (c === '[' || c === '/') {
        out += `\\${c}`;
        continue;
      }
      if (this.flags.i && /[A-Za-z]/.test(c)) {
        // A letter range gains its other-case twin; a single letter its other case.
        if (s[j + 1] === '-' && /[A-Za-z]/.test(s[j + 2] ?? '') && j + 2 < end) {
          out += `${c}-${s[j + 2]}`;
          extra += `${swap(c)}-${swap(s[j + 2]!)}`;
          j += 2;
          continue;
        }
        extra += swap(c);
      }
      out += c;
    }
    this.out += `${out}${extra}]`;
    this.i = end + 1;
  }

  private group() {
    const s = this.src;
    const rest = s.slice(this.i, this.i + 200);
    if (rest.startsWith('(?#')) {
      const close = s.indexOf(')', this.i);
      if (close < 0) throw new UntranslatableRegex('unterminated comment (?#');
      this.i = close + 1;
      return;
    }
    const backref = /^\(\?P=(\w+)\)/.exec(rest);
    if (backref) {
      this.out += `\\k<${backref[1]}>`;
      this.i += backref[0].length;
      this.quantifierTail();
      return;
    }
    const named = /^\(\?(?:P?<|')([A-Za-z_]\w*)[>']/.exec(rest);
    if (named) {
      this.open(`(?<${named[1]}>`, named[0].length);
      return;
    }
    const plain = /^\(\?(?::|=|!|<=|<!)/.exec(rest);
    if (plain) {
      this.open(plain[0], plain[0].length);
      return;
    }
    const m = /^\(\?(\^?)([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(rest);
    if (m) {
      const next = this.applyFlags(m[1] === '^', m[2]!, m[3] ?? '');
      if (m[4] === ')') {
        // `(?i)`: from here to the end of the enclosing group (the whole pattern at the start).
        this.flags = next;
        this.i += m[0].length;
      } else {
        this.stack.push(this.flags);
        this.flags = next;
        this.out += '(?:';
        this.i += m[0].length;
      }
      return;
    }
    if (rest.startsWith('(?('))
      throw new UntranslatableRegex('conditional groups (?(name)yes|no) are not supported');
    if (rest.startsWith('(?>')) throw new UntranslatableRegex('atomic groups (?>...) are not supported');
    if (rest.startsWith('(?')) {
      throw new UntranslatableRegex(
        `the group ${JSON.stringify(rest.slice(0, 4))} has no JavaScript equivalent`,
      );
    }
    this.open('(', 1);
  }

  private open(text: string, length: number) {
    this.stack.push(this.flags);
    this.flags = { ...this.flags };
    this.out += text;
    this.i += length;
  }

  private applyFlags(reset: boolean, on: string, off: string): Flags {
    const f: Flags = reset ? { i: false, s: false, m: false, x: false } : { ...this.flags };
    for (const [list, value] of [
      [on, true],
      [off, false],
    ] as const) {
      for (const ch of list) {
        if (ch === 'i' || ch === 's' || ch === 'm' || ch === 'x') f[ch] = value;
        // a/u/L (ASCII, Unicode, locale) only change \w and friends at the edges: ignored.
        else if (!'auL'.includes(ch)) throw new UntranslatableRegex(`unknown inline flag "${ch}"`);
      }
    }
    return f;
  }
}

function swap(c: string): string {
  const l = c.toLowerCase();
  return l === c ? c.toUpperCase() : l;
}

function caseless(c: string): string {
  return /[A-Za-z]/.test(c) ? `[${c}${swap(c)}]` : c;
}

/**
 * syslog-blacklist and banban match their patterns against the syslog message after the
 * timestamp and host (`sshd[1]: Failed ...`), while rampart's lines keep the host
 * (`web1 sshd[1]: Failed ...`). A `^` that starts an alternative therefore also accepts one
 * leading host token; patterns without `^` are unaffected.
 */
export function anchorAfterHost(js: string): string {
  const tree = parseRegexTree(js);
  const edits: Edit[] = [0, ...tree.bars.map((b) => b + 1)]
    .filter((at) => js[at] === '^')
    .map((at) => ({ start: at, end: at + 1, text: '^(?:\\S+ )?' }));
  return edits.length > 0 ? applyEdits(js, edits) : js;
}
