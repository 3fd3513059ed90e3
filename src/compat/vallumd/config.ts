import { hostname } from 'node:os';
import { z } from 'zod';
import { type DurationSeconds, parseDuration } from '../../core/duration.js';
import { nftablesConfigSchema } from '../../firewall/create.js';
import type { VallumdFlags } from './args.js';
import { vallumdBridgeSchema } from './bridge.js';

/**
 * The `vallumd:` section of rampart.yaml: what vallumd's flags say, plus what vallumd could not
 * be told (a fixed client id, the firewall). Flags given on the command line win over it.
 */
export const vallumdSectionSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  topics: z.array(z.string()).optional(),
  tls: z.boolean().optional(),
  cafile: z.string().optional(),
  /** MQTT client id; the broker keeps the session under it. Default `rampart-vallumd-HOSTNAME`. */
  clientId: z.string().min(1).max(23).optional(),
  keepalive: z.number().int().min(5).max(65535).optional(),
  /** `ipset` (vallumd's: the operator's sets, never created) or `nftables`. */
  backend: z.enum(['ipset', 'nftables']).optional(),
  /** Ban length in the nftables sets (ipset sets use their own default timeout). */
  bantime: z.union([z.string(), z.number()]).optional(),
  nftables: nftablesConfigSchema.optional(),
  /** The ipset program. */
  ipset: z.string().optional(),
  /** On a hub: publish fleet decisions to vallumd topics, take vallumd messages in. */
  bridge: vallumdBridgeSchema.optional(),
});

export type VallumdSection = z.output<typeof vallumdSectionSchema>;

export interface VallumdOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  topics: string[];
  cafile?: string;
  clientId: string;
  keepalive: number;
  backend: 'ipset' | 'nftables';
  bantime: DurationSeconds;
  nftables?: z.input<typeof nftablesConfigSchema>;
  ipset?: string;
}

/**
 * Flags over the section over vallumd's defaults. The client id is fixed (not vallumd's
 * `HOSTNAME-PID`) because a persistent session is found again by its id after a restart.
 * MQTT 3.1.1 servers must accept ids of up to 23 characters, so the default is cut to that.
 */
export function resolveOptions(flags: VallumdFlags, section: VallumdSection = {}): VallumdOptions {
  const tls = flags.tls || section.tls === true;
  const cafile = flags.cafile ?? section.cafile;
  return {
    host: flags.host ?? section.host!,
    port: flags.port ?? section.port ?? 1883,
    ...(flags.username !== undefined || section.username !== undefined
      ? { username: flags.username ?? section.username }
      : {}),
    ...(flags.password !== undefined || section.password !== undefined
      ? { password: flags.password ?? section.password }
      : {}),
    topics: flags.topics.length > 0 ? flags.topics : (section.topics ?? []),
    ...(tls && cafile !== undefined ? { cafile } : {}),
    clientId: section.clientId ?? `rampart-vallumd-${hostname()}`.slice(0, 23),
    keepalive: section.keepalive ?? 60,
    backend: section.backend ?? 'ipset',
    bantime: section.bantime === undefined ? null : parseDuration(section.bantime, 'vallumd.bantime'),
    ...(section.nftables ? { nftables: section.nftables } : {}),
    ...(section.ipset ? { ipset: section.ipset } : {}),
  };
}
