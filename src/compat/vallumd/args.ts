/**
 * vallumd's command line, parsed the way its getopt(3) loop does (options `c:h:p:P:t:Tu:V`,
 * clustered flags, `-hHOST` or `-h HOST`, operands and everything after `--` ignored), with its
 * usage text and exit codes, so init scripts and units written for vallumd run unchanged.
 * rampart adds one long option, `--config FILE` (see {@link splitConfigOption}), which vallumd's
 * getopt could never accept, so no vallumd command line changes meaning.
 */
export interface VallumdFlags {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  topics: string[];
  tls: boolean;
  cafile?: string;
}

export type ArgsOutcome =
  | { kind: 'run'; flags: VallumdFlags }
  /** Print `stdout`/`stderr` and exit with `code`. */
  | { kind: 'exit'; code: number; stdout: string; stderr: string };

export const VALLUMD_USAGE = `Usage: -h host [-p port] [-u username] [-P password] -t topic1 [-t topicN]
 -h: MQTT host to connect to
 -p: MQTT port to connect to (1883)
 -u: MQTT username
 -P: MQTT password
 -t: MQTT topic and IPset name
 -V: print version number and exit
TLS options:
 -c: path to CA file
 -T: use TLS
`;

const WITH_ARG = new Set(['c', 'h', 'p', 'P', 't', 'u']);
const FLAGS = new Set(['T', 'V']);

type Event = { opt: string; arg?: string } | { error: string };

/** GNU getopt without long options: permutes operands out of the way, stops at `--`. */
function getopt(argv: string[], prog: string): Event[] {
  const out: Event[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.length < 2 || a[0] !== '-') continue;
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      if (FLAGS.has(c)) {
        out.push({ opt: c });
      } else if (WITH_ARG.has(c)) {
        if (j + 1 < a.length) out.push({ opt: c, arg: a.slice(j + 1) });
        else if (i + 1 < argv.length) out.push({ opt: c, arg: argv[++i]! });
        else out.push({ error: `${prog}: option requires an argument -- '${c}'` });
        break;
      } else {
        out.push({ error: `${prog}: invalid option -- '${c}'` });
      }
    }
  }
  return out;
}

/** Takes rampart's `--config FILE` / `--config=FILE` out before vallumd's own parsing. */
export function splitConfigOption(argv: string[]): { rest: string[]; config?: string; error?: string } {
  const rest: string[] = [];
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--config') {
      if (i + 1 >= argv.length) return { rest, error: "option '--config' requires an argument" };
      config = argv[++i];
    } else if (a.startsWith('--config=')) {
      config = a.slice('--config='.length);
    } else {
      rest.push(a);
    }
  }
  return { rest, ...(config !== undefined ? { config } : {}) };
}

/**
 * The decision vallumd's main() makes: `-V` anywhere wins (exit 0); no `-t`, an unknown option,
 * a missing argument or no `-h` print the usage on stdout and exit 1; `-T` without `-c`, or a
 * CA file that does not exist, is one line on stderr and exit 1. `hasConfigDefaults` says the
 * rampart.yaml `vallumd:` section supplies host and topics, so they may be left off.
 * Differences (docs/compat/vallumd.md): getopt's complaint is printed once, not twice, and a port
 * that is not a number from 1 to 65535 is refused instead of being read by atoi.
 */
export function parseVallumdArgs(
  argv: string[],
  env: {
    prog?: string;
    version: string;
    exists: (path: string) => boolean;
    configDefaults?: Partial<VallumdFlags>;
  },
): ArgsOutcome {
  const prog = env.prog ?? 'rampart vallumd';
  const usage = (stderr = '') => ({ kind: 'exit' as const, code: 1, stdout: VALLUMD_USAGE, stderr });
  const events = getopt(argv, prog);
  const errors: string[] = [];
  for (const e of events) {
    if ('error' in e) errors.push(e.error);
    else if (e.opt === 'V') {
      return {
        kind: 'exit',
        code: 0,
        stdout: `vallumd-${env.version}\n`,
        stderr: errors.map((l) => `${l}\n`).join(''),
      };
    }
  }
  const stderr = errors.map((l) => `${l}\n`).join('');
  const flags: VallumdFlags = { topics: [], tls: false };
  for (const e of events) {
    if ('error' in e) continue;
    const v = e.arg!;
    if (e.opt === 'h') flags.host = v;
    else if (e.opt === 'p') {
      if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
        return usage(`${stderr}${prog}: -p: "${v}" is not a port number (1 to 65535)\n`);
      }
      flags.port = Number(v);
    } else if (e.opt === 'u') flags.username = v;
    else if (e.opt === 'P') flags.password = v;
    else if (e.opt === 't') flags.topics.push(v);
    else if (e.opt === 'c') flags.cafile = v;
    else if (e.opt === 'T') flags.tls = true;
  }
  const d = env.configDefaults ?? {};
  if (flags.topics.length === 0 && (d.topics?.length ?? 0) === 0) return usage(stderr);
  if (errors.length > 0) return usage(stderr);
  if (flags.host === undefined && d.host === undefined) return usage(stderr);
  const tls = flags.tls || d.tls === true;
  const cafile = flags.cafile ?? d.cafile;
  if (tls) {
    if (cafile === undefined)
      return { kind: 'exit', code: 1, stdout: '', stderr: 'TLS operation requires a CA file.\n' };
    if (!env.exists(cafile))
      return { kind: 'exit', code: 1, stdout: '', stderr: `CA file ${cafile} does not exist.\n` };
  }
  return { kind: 'run', flags };
}
