import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { FileSource } from './file.js';
import { JournaldSource } from './journald.js';
import { StreamSource } from './stdin.js';
import { SyslogSource } from './syslog.js';
import type { PositionStore, Source } from './types.js';

/** `514`, `"0.0.0.0:514"`, `"[::]:514"` → host and port (host defaults to loopback: opt in to the network). */
const listenSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const m =
    /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(String(v)) ?? /^()()(\d{1,5})$/.exec(String(v));
  const host = m ? m[1] || m[2] || '127.0.0.1' : '';
  const port = m ? Number(m[3]) : -1;
  if (!m || port > 65535 || isIP(host) === 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected PORT, "IPV4:PORT" or "[IPV6]:PORT", e.g. "127.0.0.1:514"',
    });
    return z.NEVER;
  }
  return { host, port };
});

const modeSchema = z
  .string()
  .regex(/^0?[0-7]{3}$/, 'expected an octal mode in quotes, e.g. "0660"')
  .transform((s) => Number.parseInt(s, 8));

const positive = z.number().int().positive();

const fileSchema = z.strictObject({
  type: z.literal('file'),
  name: z.string().optional(),
  paths: z.array(z.string().min(1)).min(1),
  fromStart: z.boolean().optional(),
  pollMs: positive.optional(),
  maxLineBytes: positive.optional(),
  rotateGraceMs: positive.optional(),
});

const syslogSchema = z
  .strictObject({
    type: z.literal('syslog'),
    name: z.string().optional(),
    udp: listenSchema.optional(),
    tcp: listenSchema.optional(),
    maxConnections: positive.optional(),
    unix: z
      .union([z.string().min(1), z.strictObject({ path: z.string().min(1), mode: modeSchema.optional() })])
      .optional(),
    maxMessageBytes: positive.optional(),
  })
  .refine((s) => s.udp !== undefined || s.tcp !== undefined || s.unix !== undefined, {
    message: 'give at least one of udp, tcp, unix',
  });

const journaldSchema = z.strictObject({
  type: z.literal('journald'),
  name: z.string().optional(),
  units: z.array(z.string().min(1)).optional(),
  matches: z.array(z.string().regex(/^([A-Z0-9_]+=.*|\+)$/, 'expected FIELD=value or +')).optional(),
  files: z.array(z.string().min(1)).optional(),
  directory: z.string().min(1).optional(),
  fromStart: z.boolean().optional(),
});

const stdinSchema = z.strictObject({ type: z.literal('stdin'), name: z.string().optional() });

/** One entry of the `sources:` config section. */
export const sourceSchema = z.discriminatedUnion('type', [
  fileSchema,
  syslogSchema,
  journaldSchema,
  stdinSchema,
]);
/** The `sources:` config section. */
export const sourcesSchema = z.array(sourceSchema);

export type SourceConfig = z.output<typeof sourceSchema>;

export interface SourceDeps {
  positions?: PositionStore;
  logger?: Logger;
}

/** Builds a Source from one validated `sources:` entry. */
export function createSource(c: SourceConfig, deps: SourceDeps = {}): Source {
  const { positions, logger } = deps;
  switch (c.type) {
    case 'file':
      return new FileSource({ ...c, positions, logger });
    case 'syslog': {
      const unix = typeof c.unix === 'string' ? { path: c.unix } : c.unix;
      return new SyslogSource({
        name: c.name,
        udp: c.udp,
        tcp: c.tcp && { ...c.tcp, maxConnections: c.maxConnections },
        unix,
        maxMessageBytes: c.maxMessageBytes,
        logger,
      });
    }
    case 'journald':
      return new JournaldSource({ ...c, positions, logger });
    case 'stdin':
      return new StreamSource({ name: c.name, logger });
  }
}

/**
 * Validates a raw `sources:` section and builds every source. A config file should rather embed
 * `sourcesSchema` in its own schema and load it with `loadYamlFile`, so errors also name the line.
 */
export function createSources(raw: unknown, deps: SourceDeps = {}): Source[] {
  const r = sourcesSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(issue.message, { key: ['sources', ...issue.path.map(String)].join('.') });
  }
  return r.data.map((c) => createSource(c, deps));
}
