import type { LogLine } from '../detect/types.js';

/**
 * A log source pushes lines to a callback. `start` resolves once the source is listening (a
 * socket bound, a file opened or waited for); `stop` releases everything and is safe to call
 * twice. Sources that can resume (files, journald) persist their position through the
 * `PositionStore` they are given, so a restart neither loses nor repeats lines.
 */
export interface Source {
  readonly name: string;
  start(onLine: (line: LogLine) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Where a source keeps its resume point (a file offset + inode, a journald cursor). */
export interface PositionStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}
