import type Database from 'better-sqlite3';

/**
 * Rows per multi-row statement. One statement per row was most of the hub's CPU per decision on
 * the bulk path (ADR 0048): each run binds its parameters by name from an object and steps the
 * VDBE program once per row; 64 rows per statement bind positionally and share the program, about
 * half the cost. 64 × 12 parameters stays far below SQLite's limit.
 */
const ROWS = 64;

export type Param = string | number | bigint | Buffer | null;

/**
 * One table's rows, written `ROWS` at a time by a multi-row statement, the rest one by one: the
 * hub's append (sqlite-append.ts) and the agent's hub bans (agent/state.ts).
 */
export class RowBuffer {
  private readonly many: Database.Statement<[Param[]]>;
  private readonly one: Database.Statement<[Param[]]>;
  private readonly params: Param[] = [];
  /** `row`: one row's VALUES text, with `width` parameters. */
  constructor(
    db: Database.Database,
    private readonly width: number,
    row: string,
    sql: (values: string) => string,
  ) {
    this.many = db.prepare<[Param[]]>(sql(Array.from({ length: ROWS }, () => row).join(', ')));
    this.one = db.prepare<[Param[]]>(sql(row));
  }

  /** Takes one row's values (exactly `width` of them, pushed by the caller). */
  get row(): Param[] {
    return this.params;
  }

  /** After each row: writes a full statement's worth. */
  rowDone(): void {
    if (this.params.length === ROWS * this.width) this.flush();
  }

  flush(): void {
    const p = this.params;
    try {
      if (p.length === ROWS * this.width) this.many.run(p);
      else for (let at = 0; at < p.length; at += this.width) this.one.run(p.slice(at, at + this.width));
    } finally {
      // A failed write fails the transaction: nothing of it may be written by the next one.
      p.length = 0;
    }
  }

  clear(): void {
    this.params.length = 0;
  }
}

/** `(?, ?, …)` with `n` parameters: one row's VALUES text. */
export function placeholders(n: number): string {
  return `(${Array.from({ length: n }, () => '?').join(', ')})`;
}
