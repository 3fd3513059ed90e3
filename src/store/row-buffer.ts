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
 *
 * The values go by index into one array of a full statement's size, kept for the buffer's life.
 * Pushed onto an array that was emptied (`length = 0`) after each statement, V8 dropped its
 * backing store every time and grew it again in steps: about 130 bytes of garbage per row of 5,
 * the largest item of an agent's allocation per decision on the bulk path (ADR 0068).
 */
export class RowBuffer {
  private readonly many: Database.Statement<[Param[]]>;
  private readonly one: Database.Statement<[Param[]]>;
  private readonly params: Param[];
  /** One row's values for `one`, reused likewise. */
  private readonly single: Param[];
  /** Values taken so far (a multiple of `width` between rows). */
  private n = 0;
  /** `row`: one row's VALUES text, with `width` parameters. */
  constructor(
    db: Database.Database,
    private readonly width: number,
    row: string,
    sql: (values: string) => string,
  ) {
    this.many = db.prepare<[Param[]]>(sql(Array.from({ length: ROWS }, () => row).join(', ')));
    this.one = db.prepare<[Param[]]>(sql(row));
    this.params = new Array<Param>(ROWS * width).fill(null);
    this.single = new Array<Param>(width).fill(null);
  }

  /** Takes the next value of the row being written (exactly `width` per row, then `rowDone`). */
  put(v: Param): void {
    this.params[this.n++] = v;
  }

  /** After each row: writes a full statement's worth. */
  rowDone(): void {
    if (this.n === this.params.length) this.flush();
  }

  flush(): void {
    const p = this.params;
    const one = this.single;
    const n = this.n;
    try {
      if (n === p.length) this.many.run(p);
      else
        for (let at = 0; at < n; at += this.width) {
          for (let k = 0; k < this.width; k++) one[k] = p[at + k]!;
          this.one.run(one);
        }
    } finally {
      // A failed write fails the transaction: nothing of it may be written by the next one.
      this.n = 0;
    }
  }

  clear(): void {
    this.n = 0;
  }
}

/** `(?, ?, …)` with `n` parameters: one row's VALUES text. */
export function placeholders(n: number): string {
  return `(${Array.from({ length: n }, () => '?').join(', ')})`;
}
