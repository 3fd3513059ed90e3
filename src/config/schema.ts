import { existsSync } from 'node:fs';
import { z } from 'zod';
import { busConfigSchema } from '../bus/config.js';
import { vallumdSectionSchema } from '../compat/vallumd/config.js';
import { parseByteSize } from '../core/byte-size.js';
import { loadYamlFile } from '../core/config-file.js';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_CONFIG_FILE } from '../core/paths.js';
import { firewallConfigSchema } from '../firewall/config.js';
import { hubSectionSchema } from '../hub/config.js';
import { sourcesSchema } from '../sources/create.js';
import { agentSectionSchema, cidrText } from './agent-section.js';

const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseByteSize(v);
  if (n === null) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a size: bytes, or a number with KiB, MiB, GiB, kB, MB or GB',
    });
    return z.NEVER;
  }
  return n;
});

/** `rules:`: which built-in rules run and which rule files are loaded on top. */
export const rulesSectionSchema = z
  .object({
    builtin: z.array(z.string()).default(['sshd']),
    aggressive: z.boolean().default(false),
    files: z.array(z.string()).default([]),
    /**
     * Most memory detection may keep about attacking addresses (bytes, or `64MiB`, `1GB`): the
     * number of tracked (rule, address) pairs is lowered until their worst case fits.
     */
    trackerMemory: byteSize.default(128 * 1024 * 1024),
  })
  .strict();

/**
 * The top-level rampart.yaml: one file for a hub, an agent or both (`rampart up`), composed of
 * each layer's own section schema. Every section is optional; an empty file runs on embedded
 * defaults.
 */
export const rampartConfigSchema = z
  .object({
    fleet: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only')
      .optional(),
    /** Data folder; `--data` overrides it. */
    data: z.string().optional(),
    agent: agentSectionSchema.default(agentSectionSchema.parse({})),
    rules: rulesSectionSchema.default(rulesSectionSchema.parse({})),
    sources: sourcesSchema.default([]),
    firewall: firewallConfigSchema.optional(),
    bus: busConfigSchema.optional(),
    hub: hubSectionSchema.optional(),
    /** `rampart vallumd`'s settings (docs/compat/vallumd.md). */
    vallumd: vallumdSectionSchema.optional(),
    /** Fleet-wide on a hub; on an agent, never banned locally. */
    allowlist: z.array(cidrText).default([]),
  })
  .strict();

export type RampartConfig = z.output<typeof rampartConfigSchema>;

/**
 * Loads `file`, or /etc/rampart/rampart.yaml when it exists, or the embedded defaults. An explicit
 * file that is missing is an error; errors name the file, the line and the key.
 */
export function loadConfig(file?: string): RampartConfig & { file?: string } {
  if (file !== undefined) {
    if (!existsSync(file)) throw new ConfigError('config file not found', { file });
    return { ...loadYamlFile(file, rampartConfigSchema), file };
  }
  if (existsSync(DEFAULT_CONFIG_FILE)) {
    return { ...loadYamlFile(DEFAULT_CONFIG_FILE, rampartConfigSchema), file: DEFAULT_CONFIG_FILE };
  }
  return rampartConfigSchema.parse({});
}
