/**
 * Turns one received syslog message (RFC 3164 or RFC 5424, `<PRI>` optional) into the
 * traditional line a syslog daemon would have written to a file: `Mmm dd hh:mm:ss host tag[pid]: msg`
 * (or `host tag[pid]: msg` when the sender gave no time). Rules written for log files then match
 * syslog input the same way. Pure and total: any input gives a result, nothing throws.
 */

export interface SyslogMessage {
  /** The traditional-form line, control characters escaped as `#ooo` (rsyslog's default). */
  text: string;
  /** Epoch ms from an RFC 5424 / ISO timestamp; undefined for RFC 3164 (no year, no zone). */
  time?: number;
  facility?: number;
  severity?: number;
  format: 'rfc3164' | 'rfc5424';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// RFC 3164 §4.1.2: "Mmm dd hh:mm:ss", day space-padded; some senders zero-pad it.
const RFC3164_TIME = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ 0-3]\d) (\d\d:\d\d:\d\d) /;
// RFC 5424 §6.2.3 TIMESTAMP (RFC 3339 with at most 6 fraction digits); rsyslog's high-precision
// traditional forwarding puts the same form where the 3164 timestamp goes.
const ISO_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)/;
const RFC5424_HEAD = /^([1-9]\d{0,2}) /;
// A first token that is a tag, not a host: `sshd:`, `sshd[12]:`, `sshd[12]`.
const TAG_TOKEN = /^[^\s[\]]{1,64}(\[[^\s\]]*\])?:$|^[^\s[\]]{1,64}\[[^\s\]]*\]$/;

/**
 * Parses one message. `fallbackHost` fills the host field when the sender left it out (local
 * senders such as `logger -u` do), the way a syslog daemon writes its own or the peer's name.
 */
export function parseSyslog(raw: string, fallbackHost = 'localhost'): SyslogMessage {
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === '\n' || raw[end - 1] === '\r' || raw[end - 1] === '\0')) end--;
  let s = end === raw.length ? raw : raw.slice(0, end);
  let facility: number | undefined;
  let severity: number | undefined;
  const pri = /^<(\d{1,3})>/.exec(s);
  if (pri && Number(pri[1]) <= 191) {
    facility = Number(pri[1]) >> 3;
    severity = Number(pri[1]) & 7;
    s = s.slice(pri[0].length);
    const v5424 = RFC5424_HEAD.exec(s);
    if (v5424) {
      const m = parse5424(s.slice(v5424[0].length), fallbackHost);
      if (m) return { text: m.text, time: m.time, facility, severity, format: 'rfc5424' };
    }
  }
  const m = parse3164(s, fallbackHost);
  return { text: m.text, time: m.time, facility, severity, format: 'rfc3164' };
}

function parse3164(s: string, fallbackHost: string): { text: string; time?: number } {
  let stamp = '';
  let time: number | undefined;
  let rest = s;
  const t = RFC3164_TIME.exec(s);
  if (t) {
    stamp = `${t[1]} ${t[2]!.replace(/^0/, ' ')} ${t[3]} `;
    rest = s.slice(t[0].length);
  } else {
    const iso = ISO_TIME.exec(s);
    const ms = iso ? isoToMs(iso) : undefined;
    if (iso && ms !== undefined && s[iso[0].length] === ' ') {
      time = ms;
      stamp = `${traditionalTime(ms)} `;
      rest = s.slice(iso[0].length + 1);
    }
  }
  rest = rest.replace(/^ +/, '');
  const first = rest.split(' ', 1)[0] ?? '';
  if (TAG_TOKEN.test(first)) rest = `${safeHost(fallbackHost)} ${rest}`;
  return { text: escapeControls(stamp + rest), time };
}

/** RFC 5424 §6: everything after `VERSION SP`. Undefined when the header is malformed. */
function parse5424(s: string, fallbackHost: string): { text: string; time?: number } | undefined {
  const fields: string[] = [];
  let pos = 0;
  // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, each a run of non-space characters.
  for (let i = 0; i < 5; i++) {
    const sp = s.indexOf(' ', pos);
    if (sp <= pos) return undefined;
    fields.push(s.slice(pos, sp));
    pos = sp + 1;
  }
  const sdEnd = skipStructuredData(s, pos);
  if (sdEnd === undefined) return undefined;
  let msg = sdEnd < s.length ? s.slice(sdEnd + 1) : '';
  if (msg.startsWith('\uFEFF')) msg = msg.slice(1); // §6.4: MSG may start with a UTF-8 BOM.
  const [stamp, host, app, procid] = fields as [string, string, string, string, string];
  let time: number | undefined;
  if (stamp !== '-') {
    const iso = ISO_TIME.exec(stamp);
    if (!iso || iso[0].length !== stamp.length) return undefined;
    time = isoToMs(iso);
    if (time === undefined) return undefined;
  }
  const tag = app === '-' ? '' : procid === '-' ? `${app}: ` : `${app}[${procid}]: `;
  const head = time === undefined ? '' : `${traditionalTime(time)} `;
  const hostname = host === '-' ? safeHost(fallbackHost) : host;
  return { text: escapeControls(`${head}${hostname} ${tag}${msg}`), time };
}

/**
 * RFC 5424 §6.3: STRUCTURED-DATA is `-` or one or more `[id param="value"...]`, where a value may
 * contain `\"`, `\\` and `\]`. Returns the index just after it, or undefined when malformed.
 */
function skipStructuredData(s: string, pos: number): number | undefined {
  if (s[pos] === '-') return pos + 1 === s.length || s[pos + 1] === ' ' ? pos + 1 : undefined;
  if (s[pos] !== '[') return undefined;
  let i = pos;
  while (s[i] === '[') {
    let inQuote = false;
    i++;
    for (; i < s.length; i++) {
      const c = s[i];
      if (inQuote && c === '\\') i++;
      else if (c === '"') inQuote = !inQuote;
      else if (!inQuote && c === ']') break;
    }
    if (i >= s.length) return undefined;
    i++;
  }
  return i === s.length || s[i] === ' ' ? i : undefined;
}

function isoToMs(m: RegExpExecArray): number | undefined {
  // Date.parse takes at most millisecond precision reliably: cut the fraction to 3 digits.
  const frac = m[2] ? m[2].slice(0, 4).padEnd(4, '0') : '';
  const ms = Date.parse(`${m[1]}${frac}${m[3]}`);
  return Number.isFinite(ms) ? ms : undefined;
}

let cachedSecond = Number.NaN;
let cachedText = '';

/** `Mmm dd hh:mm:ss` in local time, day space-padded, as syslog daemons write files. */
export function traditionalTime(ms: number): string {
  // Messages arrive in bursts within one second: format each second once.
  const second = Math.floor(ms / 1000);
  if (second === cachedSecond) return cachedText;
  cachedSecond = second;
  cachedText = formatLocal(new Date(ms));
  return cachedText;
}

function formatLocal(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function safeHost(host: string): string {
  return host.replace(/[^\x21-\x7e]/g, '') || 'localhost';
}

/**
 * rsyslog escapes control characters on receive as `#` + three octal digits (`\n` → `#012`), so
 * an embedded newline can never forge a second line; files written by rsyslog carry the same
 * escapes, keeping rules identical for both inputs. Tab is kept: it cannot break framing.
 */
export function escapeControls(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => `#${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}
