import type { Command } from 'commander';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions } from '../hub-client.js';

interface Status {
  head: number;
  nodes: Array<{
    name: string;
    lastSeq: number;
    lag: number;
    lastSeen: number | null;
    version: string | null;
    clockSkewMs?: number;
    clockRefused?: boolean;
  }>;
  bus: { type: string; url: string; connected?: boolean };
  decisions: { active: number };
  reports?: Record<string, number>;
  dropped?: Record<string, number>;
}

const counts = (r: Record<string, number> | undefined) =>
  Object.entries(r ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/** Skews under this are transit time and timer jitter, not a clock to fix. */
const SKEW_WARN_MS = 5_000;

function skew(n: Status['nodes'][number]): string {
  if (n.clockSkewMs === undefined) return '-';
  const s = `${n.clockSkewMs >= 0 ? '+' : ''}${(n.clockSkewMs / 1000).toFixed(1)}s`;
  return n.clockRefused ? `${s} REFUSED` : s;
}

function ago(t: number | null): string {
  if (t === null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export function register(program: Command): void {
  hubOptions(program.command('status').option('--json', 'print the status as JSON'))
    .description("The hub's view of the fleet: log head, active bans, bus, each node's lag")
    .action(
      action(async (o: HubFlags & { json?: boolean }) => {
        const client = HubClient.from(o);
        const s = await client.get<Status>('/v1/status');
        if (o.json) {
          process.stdout.write(`${JSON.stringify(s)}\n`);
          return;
        }
        const bus = `${s.bus.type} ${s.bus.url}${s.bus.connected === false ? ' (DOWN)' : ''}`;
        let out = `hub ${client.url}\nlog head ${s.head}, ${s.decisions.active} active bans\nbus ${bus}\n`;
        out += `reports: ${counts(s.reports)}\ndropped messages: ${counts(s.dropped)}\n`;
        if (s.nodes.length === 0) out += 'no nodes enrolled (add one: rampart nodes add NAME)\n';
        else {
          const rows = s.nodes.map((n) => [
            n.name,
            String(n.lastSeq),
            String(n.lag),
            ago(n.lastSeen),
            skew(n),
            n.version ?? '-',
          ]);
          out += `\n${formatTable(['NODE', 'LAST SEQ', 'LAG', 'LAST SEEN', 'CLOCK', 'VERSION'], rows)}`;
          for (const n of s.nodes) {
            if (n.clockRefused)
              out += `${n.name}: clock off by ${skew(n).split(' ')[0]}, outside the time window: its messages are refused (fix its time sync)\n`;
            else if (Math.abs(n.clockSkewMs ?? 0) > SKEW_WARN_MS)
              out += `${n.name}: clock off by ${skew(n)} (check its time sync)\n`;
          }
        }
        process.stdout.write(out);
      }),
    );
}
