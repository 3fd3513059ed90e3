import { elementLines, type ScriptLine } from './nft-text.js';

interface PerSet {
  /** Elements to add, and the same rendered with their timeouts (`ADDR timeout Ns`). */
  adds: string[];
  rendered: string[];
  /** Addresses to take out first: strays, and elements whose time left is replaced. */
  out: string[];
}

/**
 * The changes of one repair transaction, per kernel set, as nft script lines. Deletes are written
 * `add X; delete X` (an element that expired meanwhile would fail the whole transaction), and a
 * renewed element is deleted and added again in the same transaction: an `add` of an element
 * already there keeps its old timeout on kernels before 6.x's timeout updates, and a permanent
 * one cannot be given a timeout that way at all.
 */
export class RepairBatch {
  private readonly sets = new Map<string, PerSet>();
  /** Elements held (each counted once, a renewal too). */
  size = 0;

  constructor(private readonly where: string) {}

  private of(set: string): PerSet {
    let s = this.sets.get(set);
    if (!s) {
      s = { adds: [], rendered: [], out: [] };
      this.sets.set(set, s);
    }
    return s;
  }

  add(set: string, text: string, rendered: string): void {
    const s = this.of(set);
    s.adds.push(text);
    s.rendered.push(rendered);
    this.size++;
  }

  remove(set: string, text: string): void {
    this.of(set).out.push(text);
    this.size++;
  }

  renew(set: string, text: string, rendered: string): void {
    const s = this.of(set);
    s.out.push(text);
    s.adds.push(text);
    s.rendered.push(rendered);
    this.size++;
  }

  /** The script lines of everything held, which is then forgotten. */
  take(): ScriptLine[] {
    const lines: ScriptLine[] = [];
    for (const [set, { adds, rendered, out }] of this.sets) {
      lines.push(...elementLines('add', this.where, set, out, (i) => out[i]!));
      lines.push(...elementLines('delete', this.where, set, out, (i) => out[i]!));
      lines.push(...elementLines('add', this.where, set, adds, (i) => rendered[i]!));
    }
    this.sets.clear();
    this.size = 0;
    return lines;
  }
}
