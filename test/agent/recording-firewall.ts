import type { Target } from '../../src/core/address.js';
import type { DurationSeconds } from '../../src/core/duration.js';
import type { CommitResult, Firewall, FirewallEntry } from '../../src/firewall/types.js';

/**
 * A Firewall that records committed state in memory, for the agent's ordering logic. Kernel
 * behaviour is tested with real nftables in test/fleet.
 */
export class RecordingFirewall implements Firewall {
  readonly name = 'recording';
  readonly committed = new Map<string, { target: Target; timeout: DurationSeconds; set: string }>();
  commits = 0;
  failNext = 0;
  private staged: Array<['add', Target, DurationSeconds, string] | ['del', Target, string]> = [];

  async init(): Promise<void> {}
  add(target: Target, timeout: DurationSeconds, set = 'blocklist'): void {
    this.staged.push(['add', target, timeout, set]);
  }
  delete(target: Target, set = 'blocklist'): void {
    this.staged.push(['del', target, set]);
  }
  pending(): number {
    return this.staged.length;
  }
  async commit(): Promise<CommitResult> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected commit failure');
    }
    const batch = this.staged;
    this.staged = [];
    let added = 0;
    let deleted = 0;
    for (const op of batch) {
      if (op[0] === 'add') {
        this.committed.set(`${op[3]}|${op[1].text}`, { target: op[1], timeout: op[2], set: op[3] });
        added++;
      } else if (this.committed.delete(`${op[2]}|${op[1].text}`)) {
        deleted++;
      }
    }
    this.commits++;
    return { added, deleted };
  }
  async list(): Promise<FirewallEntry[]> {
    return [...this.committed.values()];
  }
  async shutdown(): Promise<void> {}
  targets(): string[] {
    return [...this.committed.values()].map((e) => e.target.text).sort();
  }
}
