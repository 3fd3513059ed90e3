import fs from 'node:fs';
import { createRequire } from 'node:module';
import { KERNEL_CORE_SOURCE } from './kernel-worker-source.js';
import type { ToolResult } from './run-tool.js';

/**
 * Scripts up to this many characters run on the calling thread (about 150 elements, well under a
 * millisecond of event-loop time); bigger ones go to the kernel worker. Kept small on purpose: a
 * burst arriving over several turns (bus envelopes of hundreds) then still gathers into few
 * commits while the worker applies the one before, as it did before small commits ran here.
 */
export const INLINE_CHARS = 4 * 1024;

interface CoreScript {
  push(list: string[]): void;
  close(): void;
}

interface Core {
  Script: new () => CoreScript;
  run(tool: string, args: string[], script: CoreScript): ToolResult;
  load(tool: string): void;
  close(): void;
  netns(path: string): { enter(): void; leave(): void; close(): void };
  netlink(bytes: Buffer, acks: number, generation?: boolean): { reply: Buffer; gen?: { after: number } };
}

/** The commands a small commit sends: an `nft -f -` script or an `ipset -exist restore` one. */
export function isCommit(tool: 'nft' | 'ipset', args: string[]): boolean {
  return tool === 'nft'
    ? args.length === 2 && args[0] === '-f' && args[1] === '-'
    : args.length === 2 && args[0] === '-exist' && args[1] === 'restore';
}

export function scriptChars(input: string | string[]): number {
  if (typeof input === 'string') return input.length;
  let n = 0;
  for (const x of input) n += x.length;
  return n;
}

/**
 * The kernel core on the main thread, for small commits: a single ban then reaches the kernel in
 * one synchronous library call, with no thread hop. On a loaded machine each hop is a thread
 * wake-up the scheduler may delay by milliseconds, which was most of a single ban's latency.
 *
 * With a network namespace, the thread enters it around each call only (setns there and back):
 * nothing else runs on this thread during a synchronous call, so no other socket of the process
 * can be opened inside it, and every netlink socket the libraries open (or reopen) is.
 */
export class InlineKernel {
  private constructor(
    private readonly core: Core,
    private readonly tool: 'nft' | 'ipset',
    private readonly ns: ReturnType<Core['netns']> | undefined,
  ) {}

  /** Loads the library on this thread; throws when it cannot (the worker then does everything). */
  static open(
    tool: 'nft' | 'ipset',
    koffiPath: string,
    libs: { libnftables: string; libipset: string },
    netns?: string,
  ): InlineKernel {
    const koffi = createRequire(import.meta.url)(koffiPath);
    // The same source text the worker evaluates: one implementation of the library calls.
    const factory = new Function(`return ${KERNEL_CORE_SOURCE}`)() as (
      k: unknown,
      f: typeof fs,
      l: typeof libs,
    ) => Core;
    const core = factory(koffi, fs, libs);
    const ns = netns ? core.netns(netns) : undefined;
    const k = new InlineKernel(core, tool, ns);
    k.inside(() => core.load(tool));
    return k;
  }

  run(args: string[], input: string | string[]): ToolResult {
    const script = new this.core.Script();
    try {
      script.push(typeof input === 'string' ? [input] : input);
      return this.inside(() => this.core.run(this.tool, args, script));
    } finally {
      script.close();
    }
  }

  /** Sends an encoded nf_tables batch on this thread's netlink socket; returns the kernel's answer. */
  netlink(bytes: Buffer, acks: number, generation = true): { reply: Buffer; gen?: { after: number } } {
    return this.inside(() => this.core.netlink(bytes, acks, generation));
  }

  close(): void {
    this.inside(() => this.core.close());
    this.ns?.close();
  }

  private inside<T>(fn: () => T): T {
    if (!this.ns) return fn();
    this.ns.enter();
    try {
      return fn();
    } finally {
      this.ns.leave();
    }
  }
}
