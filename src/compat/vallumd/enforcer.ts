import type { Target } from '../../core/address.js';
import type { DurationSeconds } from '../../core/duration.js';
import type { Logger } from '../../core/logger.js';
import { createFirewall } from '../../firewall/create.js';
import type { Firewall } from '../../firewall/types.js';
import type { VallumdAction } from './codec.js';
import type { VallumdOptions } from './config.js';
import { isSafeSetName, readSetInfo, type SetInfo } from './set-info.js';

export interface VallumdOp {
  action: VallumdAction;
  set: string;
  target: Target;
}

type Staged = { op: VallumdOp; timeout: DurationSeconds };

/**
 * Applies vallumd messages through the firewall layer: ipset (vallumd's own mechanism: the
 * operator's sets, by their kernel names, never created) or nftables (logical sets in rampart's
 * table, or the operator's in set-only mode). Messages that arrive together go in one batch; a
 * batch the kernel refuses is replayed one message at a time on a fresh backend, so exactly the
 * bad message is logged and dropped and nothing else is lost.
 */
export class VallumdEnforcer {
  private fw: Firewall | undefined;
  /** ipset names the backend maps to themselves; a wildcard topic (`-t +`) can add more. */
  private readonly names = new Set<string>();

  constructor(
    private readonly o: Pick<VallumdOptions, 'backend' | 'bantime' | 'nftables' | 'ipset' | 'topics'>,
    private readonly log: Logger,
  ) {
    for (const t of o.topics) {
      const s = t.split('/')[0]!;
      if (isSafeSetName(s)) this.names.add(s);
    }
  }

  private make(): Firewall {
    if (this.o.backend === 'nftables') {
      return createFirewall(
        { backend: 'nftables', ...(this.o.nftables ? { nftables: this.o.nftables } : {}) },
        { logger: this.log },
      );
    }
    // Each subscribed set by its own kernel name, whatever the family (the check is ours, below).
    const sets: Record<string, { v4: string; v6: string; v4net: string; v6net: string }> = {};
    for (const s of this.names) sets[s] = { v4: s, v6: s, v4net: s, v6net: s };
    return createFirewall(
      { backend: 'ipset', ipset: { sets, ...(this.o.ipset ? { program: this.o.ipset } : {}) } },
      { logger: this.log },
    );
  }

  async init(): Promise<void> {
    this.fw = this.make();
    await this.fw.init();
  }

  private get program(): string {
    return this.o.ipset ?? 'ipset';
  }

  /** Applies `ops` in order; every refusal is one log line naming the set and address. */
  async apply(ops: VallumdOp[]): Promise<void> {
    const staged =
      this.o.backend === 'ipset'
        ? await this.checkIpset(ops)
        : ops.map((op) => ({ op, timeout: this.o.bantime }));
    if (staged.length === 0) return;
    if (this.o.backend === 'ipset' && staged.some((s) => !this.names.has(s.op.set))) {
      for (const s of staged) this.names.add(s.op.set);
      await this.fw?.shutdown();
      await this.init();
    }
    if (await this.commit(staged, staged.length > 1)) return;
    for (const s of staged) await this.commit([s], false);
  }

  /** vallumd's checks before libipset is asked: the set exists and its family fits. */
  private async checkIpset(ops: VallumdOp[]): Promise<Staged[]> {
    const info = new Map<string, SetInfo | undefined | Error>();
    const out: Staged[] = [];
    for (const op of ops) {
      const fields = { set: op.set, address: op.target.text, action: op.action };
      if (!isSafeSetName(op.set)) {
        this.log.error(fields, 'ipset: no such set (not a valid set name)');
        continue;
      }
      if (!info.has(op.set)) {
        info.set(op.set, await readSetInfo(this.program, op.set).catch((err: Error) => err));
      }
      const i = info.get(op.set);
      if (i instanceof Error) {
        this.log.error({ ...fields, err: i.message }, 'ipset: cannot read the set');
      } else if (i === undefined) {
        this.log.error(fields, 'ipset: the set does not exist (vallumd never creates sets)');
      } else if (i.family !== undefined && i.family !== op.target.family) {
        this.log.error(fields, 'ipset: address does not match the family of the set');
      } else {
        // The set's own default timeout, as `ipset -exist add` without a timeout would give.
        out.push({ op, timeout: i.timeout === undefined || i.timeout === 0 ? null : i.timeout });
      }
    }
    return out;
  }

  /** One commit; false (after logging, with a fresh backend) when the firewall refused it. */
  private async commit(batch: Staged[], quietFailure: boolean): Promise<boolean> {
    const fw = this.fw!;
    const staged: Staged[] = [];
    for (const s of batch) {
      try {
        if (s.op.action === 'add') fw.add(s.op.target, s.timeout, s.op.set);
        else fw.delete(s.op.target, s.op.set);
        staged.push(s);
      } catch (err) {
        this.log.error({ set: s.op.set, address: s.op.target.text, err: (err as Error).message }, 'refused');
      }
    }
    if (staged.length === 0) return true;
    try {
      await fw.commit();
    } catch (err) {
      if (!quietFailure) {
        const s = staged[0]!;
        this.log.error(
          { set: s.op.set, address: s.op.target.text, action: s.op.action, err: (err as Error).message },
          `${this.o.backend}: the kernel refused the change`,
        );
      }
      // A backend keeps a failed batch staged for a retry; vallumd drops a refused message.
      await fw.shutdown().catch(() => undefined);
      await this.init();
      return false;
    }
    for (const s of staged) {
      const fields = { set: s.op.set, address: s.op.target.text };
      if (s.op.action === 'add') this.log.info(fields, `${this.o.backend}: added`);
      else this.log.info(fields, `${this.o.backend}: deleted (if present)`);
    }
    return true;
  }

  async close(): Promise<void> {
    await this.fw?.shutdown();
  }
}
