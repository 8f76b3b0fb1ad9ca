// The HTTP provisioner API, with the Python Ozwald's paths and body shapes so
// existing clients keep working, minus its leaks: tokens become unlock keys
// and are never stored or echoed.
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import { z } from 'zod';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { loadManifests } from '../config/load.js';
import type { Model } from '../config/model.js';
import { SAFE_NAME } from '../config/schema.js';
import { formatProblem } from '../config/yaml.js';
import { updateDynamic } from '../controller/dynamic.js';
import { isOzwError, OzwError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../state/store.js';
import type { InstanceStatus } from '../state/status.js';
import { seal } from '../vault/envelope.js';
import { duplicateJsonKey, parseJsonPayload } from '../vault/payload.js';
import { tokenProblem } from '../vault/token.js';

export interface ApiOptions {
  store: Store;
  manifests: string;
  systemKey: string;
  logger: Logger;
  /** Largest request body accepted, in bytes. */
  bodyLimit?: number;
}

const name = z.string().regex(SAFE_NAME, { error: 'must be a name of letters, digits, _ . - (at most 63)' });
const ServiceInformation = z.object({
  name,
  service: name,
  realm: name.default('default'),
  variety: name.nullable().optional(),
  profile: name.nullable().optional(),
  persistent: z.boolean().optional(),
  // Accepted for compatibility with the Python Ozwald's clients, and ignored.
  status: z.string().nullable().optional(),
  properties: z.record(z.string(), z.unknown()).optional(),
  info: z.record(z.string(), z.unknown()).optional(),
  secrets_tokens: z.record(name, z.string()).optional(),
});
const UpdateBody = z.array(ServiceInformation).max(1000);
const SecretsBody = z.object({
  realm: name,
  locker_name: name,
  token: z.string(),
  payload: z.record(z.string(), z.string()),
});
const Accepted = z.object({ status: z.literal('accepted'), message: z.string() });
const ErrorBody = z.object({ code: z.string(), message: z.string(), issues: z.array(z.object({ path: z.string(), message: z.string() })).optional() });

const STATUS_WORD: Partial<Record<InstanceStatus['phase'], string>> = { Running: 'available', Starting: 'starting', Pending: 'starting', Stopping: 'stopping' };

// A key that is not a valid name may be a secret pasted in the wrong place
// (payload {"API_KEY: sk-…": 5}): paths and messages show names only.
const SHOWN = /^[A-Za-z0-9_.-]{1,64}$/;
function safePath(instancePath: string): string {
  const segs = instancePath.replace(/^\//, '').split('/').filter((x) => x !== '').map((x) => x.replaceAll('~1', '/').replaceAll('~0', '~'));
  return segs.map((x) => (SHOWN.test(x) ? x : '(a key that is not a valid name, not shown)')).join('.') || '(body)';
}
function safeText(message: string): string {
  return message.replace(/"([^"]*)"/g, (all, inner: string) => (SHOWN.test(inner) ? all : '"(not shown)"'));
}

function sameKey(given: string, expected: string): boolean {
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function httpStatus(code: ErrorCode): number {
  switch (code) {
    case 'OZW_UNAUTHORIZED': return 401;
    case 'OZW_NOT_FOUND': return 404;
    case 'OZW_CONFLICT': return 409;
    case 'OZW_REDIS_UNAVAILABLE': return 503;
    case 'OZW_MANIFEST_INVALID': case 'OZW_MANIFEST_NOT_FOUND': return 503;
    default: return 400;
  }
}

export interface ApiServer {
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

export async function buildApi(o: ApiOptions): Promise<ApiServer> {
  if (!o.systemKey) throw new OzwError('OZW_USAGE', 'the API will not start without OZWALD_SYSTEM_KEY (the bearer key clients must send)');
  const bodyLimit = o.bodyLimit ?? 256 * 1024;
  // Trailing slashes as the Python Ozwald's clients write them, or not.
  const app = Fastify({ loggerInstance: o.logger, bodyLimit, routerOptions: { ignoreTrailingSlash: true } }).withTypeProvider<ZodTypeProvider>();
  // Fastify's own JSON parsing (with its prototype-poisoning guards), keeping
  // the text: JSON.parse keeps the last of a key set twice, which `secrets set`
  // refuses, and so must this API.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    (req as unknown as { rawJson?: string }).rawJson = body as string;
    jsonParser(req, body as string, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: { info: { title: 'Ozwald provisioner API', version: '1' }, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] },
    transform: jsonSchemaTransform,
  });

  app.addHook('onRequest', async (req, reply) => {
    // The health route alone, however it is spelled (query, trailing slash).
    if (/^\/health\/?(\?|$)/.test(req.url)) return;
    const auth = req.headers.authorization ?? '';
    const m = /^bearer (.+)$/i.exec(auth); // the scheme is case-insensitive (RFC 9110)
    if (!m || !sameKey(m[1]!, o.systemKey)) {
      reply.header('WWW-Authenticate', 'Bearer');
      await reply.code(401).send({ code: 'OZW_UNAUTHORIZED', message: 'Invalid authentication credentials' });
    }
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ code: 'OZW_NOT_FOUND', message: 'no such route; see /openapi.json' }));
  app.setErrorHandler((err, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      // The path and the rule, never the value sent (it may be a token).
      const issues = err.validation.map((v) => ({ path: safePath(v.instancePath), message: safeText(v.message ?? 'invalid') }));
      return reply.code(400).send({ code: 'OZW_BAD_REQUEST', message: `invalid request body: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues });
    }
    if (isOzwError(err)) {
      return reply.code(httpStatus(err.code)).send({ code: err.code, message: err.message, ...(err.details.length > 1 ? { issues: err.details.map((d) => ({ path: '', message: d })) } : {}) });
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ code: 'OZW_BODY_TOO_LARGE', message: `request body over ${bodyLimit / 1024} KiB` });
    if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ code: 'OZW_BAD_REQUEST', message: 'malformed request (the body must be JSON)' });
    if (/ECONNREFUSED|Connection is closed|max retries|ETIMEDOUT|Command timed out|Stream isn't writeable|enableOfflineQueue/i.test(e.message ?? '')) {
      return reply.code(503).send({ code: 'OZW_REDIS_UNAVAILABLE', message: 'Redis is unreachable; try again' });
    }
    req.log.error({ err: e.message }, 'request failed');
    return reply.code(500).send({ code: 'OZW_INTERNAL', message: 'internal error' });
  });

  const model = async (): Promise<Model> => {
    const { model, problems } = await loadManifests(o.manifests);
    if (!model) throw new OzwError('OZW_MANIFEST_INVALID', `the manifests do not load: ${problems.slice(0, 3).map(formatProblem).join('; ')}`);
    return model;
  };

  app.get('/health', { schema: { response: { 200: z.object({ status: z.literal('healthy') }) } } }, async () => ({ status: 'healthy' as const }));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/srv/services/configured/', { schema: { response: { 200: z.array(z.record(z.string(), z.unknown())), '4xx': ErrorBody, '5xx': ErrorBody } } }, async () => {
    const m = await model();
    const out: Record<string, unknown>[] = [];
    for (const realm of m.realms.values()) {
      for (const svc of realm.services.values()) {
        const { name: svcName, varieties, profiles, ...rest } = svc.def;
        out.push({ service_name: svcName, realm: realm.name, ...rest, varieties: Object.fromEntries(svc.varieties), profiles: Object.fromEntries(svc.profiles), lockers: svc.def.lockers ?? [] });
        void varieties; void profiles;
      }
    }
    return out;
  });

  app.get('/srv/services/active/', { schema: { response: { 200: z.array(z.record(z.string(), z.unknown())), '4xx': ErrorBody, '5xx': ErrorBody } } }, async () => {
    const statuses = await o.store.readStatuses();
    return statuses.map((s) => ({
      name: s.instance, service: s.service, realm: s.realm, variety: s.variety, profile: s.profile,
      persistent: s.source === 'manifest', status: STATUS_WORD[s.phase] ?? null,
      properties: {}, secrets_tokens: {},
      info: { phase: s.phase, reason: s.reason, message: s.message, lockers: s.lockers, container_id: s.containerId, since: s.since },
    }));
  });

  const update = async (req: { body: z.infer<typeof UpdateBody>; headers: Record<string, unknown> }) => {
    const persistent = req.body.findIndex((s) => s.persistent);
    if (persistent >= 0) throw new OzwError('OZW_UNKNOWN_REFERENCE', `[${persistent}]: persistent services come from the manifests and cannot be set here`);
    const tokens = new Map<string, string>();
    for (const [i, s] of req.body.entries()) {
      for (const [locker, token] of Object.entries(s.secrets_tokens ?? {})) {
        const bad = tokenProblem(token);
        if (bad) throw new OzwError('OZW_BAD_REQUEST', `[${i}].secrets_tokens.${locker}: ${bad}`);
        if (tokens.has(locker) && tokens.get(locker) !== token) throw new OzwError('OZW_BAD_REQUEST', `[${i}].secrets_tokens.${locker}: two different tokens for the same locker`);
        tokens.set(locker, token);
      }
    }
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && !(typeof ifMatch === 'string' && /^"?\d+"?$/.test(ifMatch.trim()))) {
      throw new OzwError('OZW_BAD_REQUEST', 'If-Match must be a generation number (the ETag of an earlier update, or `generation` from services list)');
    }
    const expect = typeof ifMatch === 'string' ? Number(ifMatch.trim().replaceAll('"', '')) : undefined;
    const entries = req.body.map((s) => ({ realm: s.realm, name: s.name, service: s.service, variety: s.variety ?? null, profile: s.profile ?? null }));
    const r = await updateDynamic(o.store, await model(), entries, { tokens, now: Date.now(), ...(expect !== undefined ? { expect } : {}) });
    return r.set.generation;
  };
  for (const path of ['/srv/services/active/update/', '/srv/services/dynamic/update/', '/srv/services/update/']) {
    app.post(path, { schema: { hide: path !== '/srv/services/active/update/', body: UpdateBody, response: { 202: Accepted.extend({ generation: z.number() }), '4xx': ErrorBody, '5xx': ErrorBody } } }, async (req, reply) => {
      const generation = await update(req);
      reply.header('ETag', `"${generation}"`);
      return reply.code(202).send({ status: 'accepted' as const, message: 'Service update request accepted', generation });
    });
  }

  app.post('/srv/secrets/update/', { schema: { body: SecretsBody, response: { 202: Accepted.extend({ warnings: z.array(z.string()).optional() }), '4xx': ErrorBody, '5xx': ErrorBody } } }, async (req, reply) => {
    const bad = tokenProblem(req.body.token);
    if (bad) throw new OzwError('OZW_BAD_REQUEST', `token: ${bad}`);
    const dup = duplicateJsonKey((req as unknown as { rawJson?: string }).rawJson ?? '{}');
    if (dup) throw new OzwError('OZW_BAD_REQUEST', `a key is set more than once in the body: ${dup}`);
    // The same checks as `secrets set` (names, values an env-file can carry).
    const payload = parseJsonPayload(JSON.stringify(req.body.payload), 'payload');
    const blob = await seal(req.body.realm, req.body.locker_name, req.body.token, payload);
    await o.store.setVault(req.body.realm, req.body.locker_name, blob);
    await o.store.wake(`sealed ${req.body.realm}:${req.body.locker_name}`);
    // As `secrets set` warns: sealed, but no service of these manifests can use it.
    const { model: m } = await loadManifests(o.manifests);
    const declared = m?.realms.get(req.body.realm)?.lockers.has(req.body.locker_name) ?? true;
    const warnings = declared ? [] : [`the manifests declare no locker "${req.body.locker_name}" in realm "${req.body.realm}"`];
    return reply.code(202).send({ status: 'accepted' as const, message: 'Secrets updated', ...(warnings.length ? { warnings } : {}) });
  });

  return {
    listen: (host, port) => app.listen({ host, port }).catch((e: NodeJS.ErrnoException) => {
      throw new OzwError('OZW_USAGE', `cannot listen on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : (e.code ?? e.message)}`, [], 'choose another --listen HOST:PORT (the default is 127.0.0.1:8000)');
    }),
    close: () => app.close(),
  };
}
