/**
 * banban's command line: Perl's `getopts("fs")` (clustered `-fs`, parsing stops at the first
 * operand or `--`), plus rampart's `--config FILE` (banban read only /etc/banban.yml). A bad
 * option prints banban's usage and exits 255, as its `die` does.
 */
export interface BanbanFlags {
  foreground: boolean;
  simulate: boolean;
  config: string;
}

export const BANBAN_CONFIG = '/etc/banban.yml';

export function banbanUsage(prog: string): string {
  return `usage: ${prog} [-f][-s] [--config FILE]\n-f: foreground and debug info\n-s: simulate only\n`;
}

export type BanbanArgs = { kind: 'run'; flags: BanbanFlags } | { kind: 'exit'; code: number; stderr: string };

export function parseBanbanArgs(argv: string[], prog = 'rampart banban'): BanbanArgs {
  const flags: BanbanFlags = { foreground: false, simulate: false, config: BANBAN_CONFIG };
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a.startsWith('--config=')) {
      const v = a === '--config' ? argv[++i] : a.slice('--config='.length);
      if (!v)
        return { kind: 'exit', code: 255, stderr: `option --config needs a file\n${banbanUsage(prog)}` };
      flags.config = v;
      continue;
    }
    if (a === '--') break;
    if (a.length < 2 || a[0] !== '-') break;
    for (const c of a.slice(1)) {
      if (c === 'f') flags.foreground = true;
      else if (c === 's') flags.simulate = true;
      else errors.push(`Unknown option: ${c}`);
    }
  }
  if (errors.length > 0) {
    return { kind: 'exit', code: 255, stderr: `${errors.join('\n')}\n${banbanUsage(prog)}` };
  }
  return { kind: 'run', flags };
}
