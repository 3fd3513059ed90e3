import type { FastifyInstance } from 'fastify';
import type { NodeRecord } from '../../store/types.js';
import { createJoinToken, decodeJoinToken, verifyJoinSecret } from '../../trust/join-token.js';
import { publicKeyFromText } from '../../trust/keys.js';
import type { ApiContext } from '../api.js';
import { newNodeToken, tokenHash } from '../auth.js';
import { nodeName, nodeSchema } from '../schemas.js';

function view(n: NodeRecord) {
  const state = n.removedAt !== null ? 'removed' : n.publicKey ? 'enrolled' : 'invited';
  return {
    name: n.name,
    state,
    createdAt: n.createdAt,
    removedAt: n.removedAt,
    lastSeq: n.lastSeq,
    lastSeen: n.lastSeen,
    version: n.version,
  };
}

// Envelope senders and decision origins the hub itself uses: a node by these names would blur them.
// `fleet` is the origin of bans made by fleet-wide counting (hub/core.ts FLEET_ORIGIN).
const RESERVED = new Set(['hub', 'operator', 'api', 'fleet']);

const joinExpiryKey = (name: string) => `join-expires:${name}`;

export function nodeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/nodes',
    {
      config: { access: 'admin', viewer: true },
      schema: {
        response: { 200: { type: 'object', properties: { nodes: { type: 'array', items: nodeSchema } } } },
      },
    },
    async () => ({ nodes: (await ctx.core.store.listNodes()).map(view) }),
  );

  app.post<{ Body: { name: string } }>(
    '/v1/nodes',
    {
      config: { access: 'admin' },
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: nodeName },
        },
      },
    },
    async (req, reply) => {
      const { name } = req.body;
      if (RESERVED.has(name.toLowerCase())) {
        return reply.code(400).send({
          error: `body/name: "${name}" is reserved (it names the hub or the operator in decisions)`,
          code: 'E_USAGE',
        });
      }
      const expiresAt = ctx.core.now() + ctx.joinTtlMs;
      const { token, secretHash } = createJoinToken({
        url: ctx.publicUrl(),
        hubPublicKey: ctx.hubPublicKey,
        name,
        expiresAt,
      });
      const existing = await ctx.core.store.getNode(name);
      if (existing && existing.removedAt === null) {
        return reply
          .code(409)
          .send({ error: `node ${name} already exists (remove it first)`, code: 'E_USAGE' });
      }
      await ctx.core.addNode(name, secretHash);
      // The token's own expiry field is not signed, so the hub keeps the authoritative copy.
      await ctx.core.store.setMeta(joinExpiryKey(name), String(expiresAt));
      return reply.code(201).send({ name, token, expiresAt });
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/nodes/:name',
    { config: { access: 'admin' }, schema: { params: { type: 'object', properties: { name: nodeName } } } },
    async (req, reply) => {
      if (!(await ctx.core.removeNode(req.params.name))) {
        return reply.code(404).send({ error: `no node named ${req.params.name}`, code: 'E_HTTP' });
      }
      return { removed: true };
    },
  );

  app.post<{ Body: { token: string; name: string; publicKey: string } }>(
    '/v1/join',
    {
      config: { access: 'none' },
      schema: {
        body: {
          type: 'object',
          required: ['token', 'name', 'publicKey'],
          additionalProperties: false,
          properties: {
            token: { type: 'string', maxLength: 2048 },
            name: nodeName,
            publicKey: { type: 'string', maxLength: 128 },
          },
        },
      },
    },
    async (req, reply) => {
      const token = decodeJoinToken(req.body.token);
      const { name } = req.body;
      if (token.name !== name) {
        return reply
          .code(400)
          .send({ error: `body/name: the token was issued for ${token.name}`, code: 'E_USAGE' });
      }
      let publicKey: string;
      try {
        publicKey = req.body.publicKey;
        publicKeyFromText(publicKey);
      } catch (err) {
        return reply.code(400).send({ error: `body/publicKey: ${(err as Error).message}`, code: 'E_USAGE' });
      }
      const node = await ctx.core.store.getNode(name);
      const expires = Number(await ctx.core.store.getMeta(joinExpiryKey(name)));
      const refuse = (why: string) => reply.code(403).send({ error: `join refused: ${why}`, code: 'E_AUTH' });
      if (!node || node.removedAt !== null || !node.joinSecretHash)
        return refuse('the token was already used or revoked');
      if (!verifyJoinSecret(token.secret, node.joinSecretHash))
        return refuse('the token secret does not match');
      if (Number.isFinite(expires) && expires > 0 && ctx.core.now() > expires)
        return refuse('the token has expired');
      const nodeToken = newNodeToken();
      if (!(await ctx.core.enrol(name, node.joinSecretHash, publicKey, tokenHash(nodeToken)))) {
        return refuse('the token was used concurrently');
      }
      ctx.log.info({ node: name }, 'node joined the fleet');
      const bus = ctx.bus();
      return {
        nodeToken,
        hubPublicKey: ctx.hubPublicKeyText,
        fleet: ctx.core.fleet,
        bus: { type: bus.type, url: bus.url },
      };
    },
  );
}
