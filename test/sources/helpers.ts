import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogLine } from '../../src/detect/types.js';

/** Polls `cond` until true; throws with `what` after `ms` so a failing test says what it awaited. */
export async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function collector(): { lines: LogLine[]; texts: () => string[]; push: (l: LogLine) => void } {
  const lines: LogLine[] = [];
  return { lines, texts: () => lines.map((l) => l.text), push: (l) => lines.push(l) };
}

/** A fresh temp dir and its removal. */
export async function tempDir(
  tag: string,
): Promise<{ dir: string; path: (n: string) => string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `rampart-${tag}-`));
  return { dir, path: (n) => join(dir, n), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Each numbered line `prefix N` must appear exactly once for N in 1..count; returns the problems. */
export function numberProblems(texts: string[], prefix: string, count: number): string[] {
  const seen = new Map<number, number>();
  for (const t of texts) {
    const m = new RegExp(`${prefix} (\\d+)$`).exec(t);
    if (m) seen.set(Number(m[1]), (seen.get(Number(m[1])) ?? 0) + 1);
  }
  const problems: string[] = [];
  for (let i = 1; i <= count; i++) {
    const n = seen.get(i) ?? 0;
    if (n !== 1) problems.push(`${prefix} ${i} seen ${n} times`);
  }
  return problems;
}
