/** JSON schemas shared by the route files (fastify validates requests and serialises replies with them). */

import { DECISION_FIELDS } from '../core/decision.js';

const nullableInt = { type: ['integer', 'null'] } as const;

export const decisionSchema = {
  type: 'object',
  required: [...DECISION_FIELDS],
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    action: { type: 'string', enum: ['ban', 'unban'] },
    target: { type: 'string' },
    family: { type: 'integer', enum: [4, 6] },
    duration: nullableInt,
    expiresAt: nullableInt,
    reason: { type: 'string' },
    rule: { type: 'string' },
    origin: { type: 'string' },
    createdAt: { type: 'integer' },
    set: { type: 'string' },
  },
} as const;

export const decisionPageSchema = {
  type: 'object',
  required: ['head', 'decisions'],
  properties: {
    head: { type: 'integer' },
    snapshot: { type: 'boolean' },
    decisions: { type: 'array', items: decisionSchema },
  },
} as const;

export const errorSchema = {
  type: 'object',
  required: ['error', 'code'],
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

/** Targets are parsed by core/address; the schema only bounds the size of hostile input. */
export const targetString = { type: 'string', minLength: 1, maxLength: 64 } as const;
/** Checked by core/set-name.ts in the core, so a bad name is E_SET_NAME on every path. */
export const setName = { type: 'string', maxLength: 64 } as const;
export const nodeName = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;

export const nodeSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    state: { type: 'string', enum: ['invited', 'enrolled', 'removed'] },
    createdAt: { type: 'integer' },
    removedAt: nullableInt,
    lastSeq: { type: 'integer' },
    lastSeen: nullableInt,
    version: { type: ['string', 'null'] },
  },
} as const;

export const allowEntrySchema = {
  type: 'object',
  properties: { cidr: { type: 'string' }, comment: { type: 'string' }, createdAt: { type: 'integer' } },
} as const;
