import { BlockList } from 'node:net';
import { formatIPv4, parseTarget } from '../src/core/address.js';
import { Allowlist } from '../src/core/allowlist.js';
import type { Emit } from './list.js';

/**
 * Allowlist lookups with 10,000 entries, side by side with node:net BlockList (which scans every
 * rule per check). Both answer the same probes; the figure is lookups per second and the ratio.
 */
export default async function allowlistBench(emit: Emit): Promise<void> {
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed;
  };
  const ours = new Allowlist();
  const theirs = new BlockList();
  for (let i = 0; i < 10_000; i++) {
    const prefix = 20 + (rnd() % 13);
    const t = parseTarget(`${formatIPv4(rnd())}/${prefix}`, { onWarning: () => {} });
    ours.add(t);
    theirs.addSubnet(formatIPv4(Number(t.first)), prefix, 'ipv4');
  }
  const probes = Array.from({ length: 2000 }, () => formatIPv4(rnd()));
  const parsed = probes.map((p) => parseTarget(p));
  ours.has(parsed[0]!); // build the interval index outside the timed loop

  const time = (fn: () => number, rounds: number) => {
    const t0 = process.hrtime.bigint();
    let n = 0;
    for (let r = 0; r < rounds; r++) n += fn();
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, n };
  };
  const oursRun = time(() => {
    let hits = 0;
    for (const p of probes) if (ours.has(parseTarget(p))) hits++;
    return hits;
  }, 50);
  const theirsRun = time(() => {
    let hits = 0;
    for (const p of probes) if (theirs.check(p, 'ipv4')) hits++;
    return hits;
  }, 2);
  const oursRate = (probes.length * 50) / oursRun.seconds;
  const theirsRate = (probes.length * 2) / theirsRun.seconds;
  emit({
    bench: 'allowlist',
    entries: 10_000,
    lookupsPerSecond: Math.round(oursRate),
    blockListLookupsPerSecond: Math.round(theirsRate),
    ratioVsBlockList: Number((oursRate / theirsRate).toFixed(1)),
    sameAnswers: oursRun.n / 50 === theirsRun.n / 2,
    note: 'rampart parses each probe text too; BlockList gets the raw string',
  });
}
