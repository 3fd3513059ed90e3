import type { Command } from 'commander';

/**
 * One option of a command, written once: commander registers it from here (help, errors), and a
 * command that starts without commander (`rampart agent`, ADR 0064) reads its plain command lines
 * from the same list, so the two can never disagree on a name.
 */
export interface OptionSpec {
  /** `--config`: long options only. */
  flag: string;
  /** The value's name in help (`file`); absent for an on/off flag. */
  value?: string;
  description: string;
  /** Given several times, its values are collected in order (commander's default is `[]`). */
  repeatable?: boolean;
}

/** The key commander gives an option in its `opts()`: `--fail2ban-jails` → `fail2banJails`. */
export function optionKey(spec: OptionSpec): string {
  return spec.flag.slice(2).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function addOptions(cmd: Command, specs: readonly OptionSpec[]): Command {
  for (const spec of specs) {
    const flags = spec.value === undefined ? spec.flag : `${spec.flag} <${spec.value}>`;
    if (spec.repeatable) cmd.option(flags, spec.description, (v: string, acc: string[]) => [...acc, v], []);
    else cmd.option(flags, spec.description);
  }
  return cmd;
}

export type PlainOptions = Record<string, string | string[] | true>;

/**
 * The options of a plain command line, as commander would hand them to the action, or null when
 * commander must read it. Plain means: only the options in `specs`, spelled out (`--data d` or
 * `--data=d`), a valued one at most once (unless repeatable) with a value that is neither empty
 * nor starting with `-`, and no other word. Anything else (help, an unknown or misspelt option, a
 * missing value, `--`) goes to commander, which gives its usual help and errors.
 */
export function plainOptions(args: readonly string[], specs: readonly OptionSpec[]): PlainOptions | null {
  const out: PlainOptions = {};
  for (const spec of specs) if (spec.repeatable) out[optionKey(spec)] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const eq = word.indexOf('=');
    const flag = eq > 0 ? word.slice(0, eq) : word;
    const spec = specs.find((s) => s.flag === flag);
    if (spec === undefined) return null;
    const key = optionKey(spec);
    if (spec.value === undefined) {
      if (eq > 0) return null;
      out[key] = true;
      continue;
    }
    const value = eq > 0 ? word.slice(eq + 1) : args[++i];
    if (value === undefined || value === '' || value.startsWith('-')) return null;
    const had = out[key];
    if (Array.isArray(had)) had.push(value);
    else if (had !== undefined) return null;
    else out[key] = value;
  }
  return out;
}
