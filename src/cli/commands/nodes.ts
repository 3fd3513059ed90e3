import type { Command } from 'commander';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions } from '../hub-client.js';

interface NodeView {
  name: string;
  state: string;
  lastSeq: number;
  lastSeen: number | null;
  version: string | null;
}

export function register(program: Command): void {
  const nodes = program.command('nodes').description('Servers enrolled in the fleet');

  hubOptions(
    nodes
      .command('add')
      .argument('<name>', 'node name: letters, digits, . _ - (e.g. web2)')
      .option('--json', 'print {name, token} as JSON'),
  )
    .description('Invite a server: prints a one-time join token')
    .action(
      action(async (name: string, o: HubFlags & { json?: boolean }) => {
        const r = await HubClient.from(o).post<{ name: string; token: string; expiresAt: number }>(
          '/v1/nodes',
          { name },
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        const until = new Date(r.expiresAt).toISOString();
        process.stdout.write(
          `node ${r.name} invited; the token works once, until ${until}.\nOn ${r.name}, run:\n\n  rampart join ${r.token}\n\n`,
        );
        const { decodeJoinToken } = await import('../../trust/join-token.js');
        const host = new URL(decodeJoinToken(r.token).url).hostname;
        if (host === '127.0.0.1' || host === '[::1]' || host === 'localhost') {
          process.stderr.write(
            `note: the token points at ${host}, which other servers cannot reach: start the hub with --listen 0.0.0.0 (or set hub.publicUrl)\n`,
          );
        }
      }),
    );

  hubOptions(nodes.command('list').option('--json', 'print the nodes as JSON'))
    .description('List invited, enrolled and removed nodes')
    .action(
      action(async (o: HubFlags & { json?: boolean }) => {
        const { nodes: list } = await HubClient.from(o).get<{ nodes: NodeView[] }>('/v1/nodes');
        if (o.json) process.stdout.write(`${JSON.stringify(list)}\n`);
        else if (list.length === 0) process.stdout.write('no nodes (add one: rampart nodes add NAME)\n');
        else {
          const rows = list.map((n) => [
            n.name,
            n.state,
            String(n.lastSeq),
            n.lastSeen ? new Date(n.lastSeen).toISOString() : 'never',
            n.version ?? '-',
          ]);
          process.stdout.write(formatTable(['NAME', 'STATE', 'LAST SEQ', 'LAST SEEN', 'VERSION'], rows));
        }
      }),
    );

  hubOptions(nodes.command('remove').argument('<name>', 'node name'))
    .description('Remove a node: its key and token stop working at once')
    .action(
      action(async (name: string, o: HubFlags) => {
        await HubClient.from(o).delete(`/v1/nodes/${encodeURIComponent(name)}`);
        process.stdout.write(`removed node ${name}\n`);
      }),
    );
}
