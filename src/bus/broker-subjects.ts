/**
 * MQTT-style topics ↔ NATS subjects and AMQP routing keys (both dot-separated). Levels map to tokens (`/` → `.`, `+` → `*`, `#` → `>`);
 * bytes a token cannot hold (`.`, `*`, `>`, spaces, anything outside [A-Za-z0-9_-]) are written
 * `~XX` (hex), so node names such as `web1.example.org` survive the round trip, and an empty
 * level is a lone `~`.
 */
const PLAIN = /^[A-Za-z0-9_-]$/;

function encodeLevel(level: string): string {
  if (level === '') return '~';
  let out = '';
  for (const b of Buffer.from(level, 'utf8')) {
    const ch = String.fromCharCode(b);
    out += PLAIN.test(ch) ? ch : `~${b.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}

function decodeLevel(token: string): string {
  if (token === '~') return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '~') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

export function topicToSubject(topic: string): string {
  return topic.split('/').map(encodeLevel).join('.');
}

export function subjectToTopic(subject: string): string {
  return subject.split('.').map(decodeLevel).join('/');
}

/**
 * The NATS subjects that together cover an MQTT filter. MQTT's `a/#` also matches `a` itself,
 * NATS's `a.>` does not, so that one becomes two subjects.
 */
export function filterToSubjects(filter: string): string[] {
  const levels = filter.split('/');
  const enc = levels.map((l) => (l === '+' ? '*' : l === '#' ? '>' : encodeLevel(l)));
  if (levels.at(-1) === '#' && levels.length > 1) return [enc.slice(0, -1).join('.'), enc.join('.')];
  return [enc.join('.')];
}

/** An AMQP topic-exchange binding key for an MQTT filter: AMQP's `#` also matches the parent. */
export function filterToBindingKey(filter: string): string {
  return filter
    .split('/')
    .map((l) => (l === '+' ? '*' : l === '#' ? '#' : encodeLevel(l)))
    .join('.');
}
