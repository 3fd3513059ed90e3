import type { Command } from 'commander';
import { action, EXIT } from '../exit.js';

export function register(program: Command): void {
  const config = program.command('config').description('Work with rampart.yaml');
  config
    .command('check')
    .description('Validate a rampart.yaml and every rule file it references; print each problem')
    .argument('[file]', 'the file to check', '/etc/rampart/rampart.yaml')
    .option('--json', 'print {file, ok, ruleFiles, findings} as JSON')
    .addHelpText(
      'after',
      `
Every problem is printed, one per line, as FILE:LINE: KEY: MESSAGE (rule files with their own
file and line). Files the daemons read at start (TLS, passwords, action files) must exist; a
missing log file is only a warning. Exit codes: 0 valid (warnings allowed), 2 errors found.

Examples:
  rampart config check /etc/rampart/rampart.yaml
  rampart config check --json new.yaml | jq .findings`,
    )
    .action(
      action(async (file: string, o: { json?: boolean }) => {
        const { checkConfigFile } = await import('../../config/check.js');
        const r = await checkConfigFile(file);
        if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else {
          for (const f of r.findings)
            process.stdout.write(`${f.level === 'error' ? 'error' : 'warning'}: ${f.text}\n`);
          if (r.ok) {
            const rules = r.ruleFiles.length ? ` and ${r.ruleFiles.length} rule file(s)` : '';
            process.stdout.write(`ok: ${file}${rules}\n`);
          }
        }
        if (!r.ok) process.exitCode = EXIT.USAGE;
      }),
    );
}
