import type { Command } from 'commander';
import { usageError } from './exit.js';

/** Flags shared by the long-running commands that serve the API and the embedded broker. */
export interface ServerFlags {
  config?: string;
  data?: string;
  listen?: string;
  port?: string;
  brokerPort?: string;
}

export function addServerOptions(cmd: Command, portHelp: string): Command {
  return cmd
    .option('--config <file>', 'rampart.yaml (default /etc/rampart/rampart.yaml when it exists)')
    .option('--data <dir>', 'data folder (default: $RAMPART_DATA, /var/lib/rampart as root)')
    .option('--listen <addr>', 'address for the API and the broker (default 127.0.0.1; 0.0.0.0 for a fleet)')
    .option('--port <n>', portHelp)
    .option('--broker-port <n>', 'embedded MQTT broker port (default 7781; 0 = any free port)');
}

/** A port flag's value, or a usage error naming the flag. */
export function parsePort(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw usageError(`${flag}: "${text}" is not a port (0-65535)`);
  }
  return Number(text);
}

/** `--firewall NAME`, checked before a hub, broker or agent starts rather than after. */
export async function checkFirewallFlag(name: string | undefined): Promise<void> {
  if (name === undefined) return;
  const { FIREWALL_BACKENDS } = await import('../firewall/from-config.js');
  if (!(FIREWALL_BACKENDS as readonly string[]).includes(name))
    throw usageError(
      `--firewall: unknown backend "${name.slice(0, 40)}"; valid: ${FIREWALL_BACKENDS.join(', ')}`,
    );
}
