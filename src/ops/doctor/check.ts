/** One line of `rampart doctor`: what was checked, how it went, and how to fix it. */
export interface CheckResult {
  /** Short stable name: `module nf_tables`, `hub`, `clock`, `permissions /var/lib/rampart/hub`. */
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** What the operator should do, when status is not ok. */
  fix?: string;
}

export const ok = (check: string, detail: string): CheckResult => ({ check, status: 'ok', detail });
export const warn = (check: string, detail: string, fix: string): CheckResult => ({
  check,
  status: 'warn',
  detail,
  fix,
});
export const fail = (check: string, detail: string, fix: string): CheckResult => ({
  check,
  status: 'fail',
  detail,
  fix,
});
