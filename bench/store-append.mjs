// The hub's store append on the bulk path, alone (ADR 0048): 20,000 operator bans per round in
// transactions of 10,000 (what one POST /v1/decisions/bulk of 10,000 appends), with their ban
// history, into a fresh SQLite store; process CPU per decision, a warm-up round and 3 rounds.
//   node bench/store-append.mjs DIST      (DIST: a built `dist` folder, this tree's or an older copy)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
const { SqliteStore } = await import(`${dist}/store/sqlite.js`);
const dir = mkdtempSync(join(tmpdir(), 'rampart-store-append-'));
const store = new SqliteStore(join(dir, 'hub.db'));
const now = Date.now();
const ban = (i) => ({
  action: 'ban',
  target: `198.18.${(i >> 8) & 255}.${i & 255}`,
  family: 4,
  duration: 3600,
  expiresAt: now + 3_600_000,
  reason: 'bench',
  rule: 'manual',
  origin: 'operator',
  createdAt: now,
  set: 'blocklist',
});
async function round(base) {
  const c0 = process.cpuUsage();
  for (let at = 0; at < 20_000; at += 10_000) {
    const inputs = Array.from({ length: 10_000 }, (_, i) => ban(base + at + i));
    await store.append(
      inputs,
      inputs.map((d) => ({ target: d.target, at: now })),
    );
  }
  const c = process.cpuUsage(c0);
  return Number(((c.user + c.system) / 20_000).toFixed(2));
}
await round(60_000);
const rounds = [await round(0), await round(20_000), await round(40_000)];
process.stdout.write(`${JSON.stringify({ bench: 'store-append', dist, cpuUsPerDecision: rounds })}\n`);
await store.close();
rmSync(dir, { recursive: true, force: true });
