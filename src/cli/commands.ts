import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { loadManifests } from '../config/load.js';
import { Manifest, SAFE_NAME } from '../config/schema.js';
import { formatProblem } from '../config/yaml.js';
import { Controller } from '../controller/controller.js';
import { desiredSet } from '../controller/desired.js';
import { plan } from '../controller/planner.js';
import { OzwError } from '../errors.js';
import { createLogger } from '../log.js';
import { Runtime } from '../runtime/docker.js';
import { UNLOCK_TTL_DEFAULT, UNLOCK_TTL_MAX } from '../state/keys.js';
import type { InstanceStatus } from '../state/status.js';
import { connectRedis, ensureConnected } from '../state/store.js';
import { defaultRuntimeBase, EnvFileDir } from '../vault/envfile.js';
import { inspect, seal } from '../vault/envelope.js';
import { parsePayload } from '../vault/payload.js';
import { openStore, runtimeDir, type Globals } from './context.js';
import { readToken, type TokenOptions } from './token.js';

type Values = Record<string, string | boolean | string[] | undefined>;
export interface Command {
  summary: string;
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(g: Globals, v: Values, positionals: string[]): Promise<number>;
}

const TOKEN_OPTIONS = {
  'token-stdin': { type: 'boolean' },
  'token-file': { type: 'string' },
  token: { type: 'string' },
} as const;

const GLOBAL_HELP = `global options: --redis URL (OZWALD_REDIS_URL), --provisioner NAME (OZWALD_PROVISIONER), --manifests PATH (OZWALD_MANIFESTS); Docker through DOCKER_HOST`;

const out = (s: string) => process.stdout.write(`${s}\n`);

function need(pos: string[], n: number, usage: string): string[] {
  if (pos.length !== n) throw new OzwError('OZW_USAGE', `expected ${usage}`);
  return pos;
}

function checkName(what: string, v: string): string {
  if (!SAFE_NAME.test(v)) throw new OzwError('OZW_USAGE', `${what} "${v}" is not a valid name (letters, digits, '_', '.', '-')`);
  return v;
}

function parseTtl(v: unknown): number {
  if (v === undefined) return UNLOCK_TTL_DEFAULT;
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < 1 || n > UNLOCK_TTL_MAX) throw new OzwError('OZW_TTL_INVALID', `--ttl ${String(v)}: give whole seconds from 1 to ${UNLOCK_TTL_MAX}`);
  return n;
}

async function loadOrThrow(path: string) {
  const { model, problems } = await loadManifests(path);
  if (!model) {
    const missing = problems.length === 1 && problems[0]!.line === 0;
    if (missing) throw new OzwError('OZW_MANIFEST_NOT_FOUND', formatProblem(problems[0]!));
    throw new OzwError('OZW_MANIFEST_INVALID', `${problems.length} problem(s) in ${path}`, problems.map(formatProblem));
  }
  return model;
}

function statusTable(rows: InstanceStatus[]): string {
  const head = ['INSTANCE', 'SERVICE', 'PHASE', 'REASON', 'MESSAGE'];
  const body = rows.map((s) => [
    `${s.realm}:${s.instance}`,
    `${s.service}${s.variety ? `[${s.variety}]` : ''}${s.profile ? `[${s.profile}]` : ''}`,
    s.phase,
    s.reason,
    s.message + (s.lockers.length ? ` (lockers: ${s.lockers.join(', ')})` : ''),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the controller in the foreground until SIGINT/SIGTERM',
    help: `ozwald run [--resync SECONDS] [--concurrency N]

Reconciles the manifests (and the dynamic set in Redis) with this provisioner's
containers until interrupted. Containers keep running when it stops.

example: ozwald --manifests ./manifests run --resync 10
${GLOBAL_HELP}`,
    options: { resync: { type: 'string' }, concurrency: { type: 'string' }, 'log-level': { type: 'string' }, 'metrics-listen': { type: 'string' } },
    async run(g, v) {
      const logger = createLogger({ level: (v['log-level'] as string | undefined) ?? undefined });
      const redis = connectRedis(g.redis, { forever: true });
      await ensureConnected(redis, g.redis);
      const runtime = new Runtime(g.provisioner);
      await runtime.ping();
      const ctl = new Controller({
        provisioner: g.provisioner, manifests: g.manifests, redisUrl: g.redis, redis, runtime, logger,
        envDir: new EnvFileDir(runtimeDir(defaultRuntimeBase(), g.provisioner)),
        resyncMs: v.resync ? Number(v.resync) * 1000 : 10_000,
        concurrency: v.concurrency ? Number(v.concurrency) : 4,
      });
      await ctl.start();
      logger.info({ provisioner: g.provisioner, manifests: g.manifests }, 'controller running');
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          logger.info({ signal: sig }, 'stopping; containers keep running');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await ctl.stop();
      redis.disconnect();
      return 0;
    },
  },

  validate: {
    summary: 'check manifests; prints file:line:col: message lines',
    help: `ozwald validate [PATH] [--json]

Checks a manifest file or folder without touching Redis or Docker. Exit 0 when
valid, 1 with one line per problem otherwise.

example: ozwald validate manifests/`,
    options: { json: { type: 'boolean' } },
    async run(g, v, pos) {
      const path = pos[0] ?? g.manifests;
      const { model, problems } = await loadManifests(path);
      if (v.json) out(JSON.stringify({ ok: !!model, problems }, null, 2));
      else if (model) {
        let n = 0;
        for (const r of model.realms.values()) n += r.persistent.size;
        out(`${path}: valid (${model.realms.size} realm(s), ${n} persistent service(s))`);
      } else for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
      return model ? 0 : 1;
    },
  },

  schema: {
    summary: 'print the JSON Schema of the manifest format',
    help: 'ozwald schema\n\nPrints the JSON Schema of the manifest format (for yaml-language-server).\n\nexample: ozwald schema > ozwald.schema.json',
    options: {},
    async run() {
      out(JSON.stringify(z.toJSONSchema(Manifest, { io: 'input', unrepresentable: 'any' }), null, 2));
      return 0;
    },
  },

  plan: {
    summary: 'show what the controller would do now (exit 2 when there are changes)',
    help: `ozwald plan [--json]

Compares the manifests and the dynamic set with this provisioner's containers
and prints the actions, without doing any. Exit 0: nothing to do; 2: changes.

example: ozwald plan --manifests ./manifests`,
    options: { json: { type: 'boolean' } },
    async run(g, v) {
      const model = await loadOrThrow(g.manifests);
      const { store, close } = await openStore(g);
      try {
        const runtime = new Runtime(g.provisioner);
        await runtime.ping();
        const observed = await runtime.list();
        const { desired, invalid } = desiredSet(model, (await store.readDesired()).services);
        const pairs = desired.flatMap((d) => d.spec.lockers.map((locker) => ({ realm: d.realm, locker })));
        const presence = await store.lockerPresence(pairs);
        const p = plan({ provisioner: g.provisioner, desired, invalid, observed, unlockKeys: presence.unlock, vaultKeys: presence.vault, inFlight: new Set(), backoff: new Map(), now: Date.now() });
        const lines = p.actions.map((a) =>
          a.kind === 'remove' ? `- remove  ${a.container.name} (${a.why})`
            : a.kind === 'create' ? `+ create  ${a.key} image=${a.desired.spec.image}${a.lockers.length ? ` lockers=${a.lockers.join(',')}` : ''}`
              : `~ replace ${a.key} (${a.why})`);
        const locked = p.statuses.filter((s) => s.phase === 'Locked' || s.phase === 'Failed');
        if (v.json) out(JSON.stringify({ actions: p.actions.map((a) => ({ kind: a.kind, key: a.key, ...(a.kind === 'remove' ? { container: a.container.name, why: a.why } : a.kind === 'replace' ? { why: a.why } : {}) })), blocked: locked }, null, 2));
        else {
          for (const l of lines) out(l);
          for (const s of locked) out(`! ${s.phase.toLowerCase().padEnd(7)} ${s.realm}/${s.instance}: ${s.message}`);
          if (!lines.length) out('no changes');
        }
        return p.actions.length ? 2 : 0;
      } finally {
        close();
      }
    },
  },

  status: {
    summary: 'every desired instance with its phase (--json too)',
    help: 'ozwald status [--json]\n\nShows the status the controller last recorded for each desired instance.\n\nexample: ozwald status --json',
    options: { json: { type: 'boolean' } },
    async run(g, v) {
      const { store, close } = await openStore(g);
      try {
        const [instances, controller] = await Promise.all([store.readStatuses(), store.readController()]);
        if (v.json) {
          out(JSON.stringify({ provisioner: g.provisioner, controller, instances }, null, 2));
          return 0;
        }
        if (!controller) out(`no controller has reported for provisioner "${g.provisioner}" yet (is \`ozwald run\` running?)`);
        else if (!controller.manifests.ok) {
          out(`manifests: ERROR (acting on the last good set, loaded ${controller.manifests.loadedAt ?? 'never'})`);
          for (const e of controller.manifests.errors) out(`  ${e}`);
        }
        if (controller && !controller.docker.ok) out(`docker: unreachable: ${controller.docker.error ?? ''}`);
        if (instances.length) out(statusTable(instances));
        else if (controller) out('no desired instances');
        return 0;
      } finally {
        close();
      }
    },
  },

  'secrets set': {
    summary: 'seal a JSON object or .env file into a locker',
    help: `ozwald secrets set REALM LOCKER --file F [--token-stdin | --token-file F]

Seals the KEY/VALUE pairs of F (a JSON object of strings, or KEY=VALUE lines)
into vault:REALM:LOCKER, encrypted with a key derived from the token. The
token is asked for on a no-echo prompt, or read from --token-stdin,
--token-file, OZWALD_TOKEN.

example: ozwald secrets set demo api-keys --file secrets.json`,
    options: { file: { type: 'string' }, ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = need(pos, 2, 'REALM LOCKER').map((x, i) => checkName(i ? 'locker' : 'realm', x));
      if (typeof v.file !== 'string') throw new OzwError('OZW_USAGE', 'secrets set needs --file F (a JSON object or a .env file)');
      let text: string;
      try {
        text = await fs.readFile(v.file, 'utf8');
      } catch (e) {
        throw new OzwError('OZW_PAYLOAD_INVALID', `cannot read ${v.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const payload = parsePayload(text, v.file);
      const declared = await loadManifests(g.manifests).catch(() => ({ model: undefined }));
      if (declared.model && !declared.model.realms.get(realm!)?.lockers.has(locker!)) {
        process.stderr.write(`ozwald: warning: the manifests in ${g.manifests} declare no locker "${locker}" in realm "${realm}"\n`);
      }
      const token = await readToken(v as TokenOptions, { confirm: true });
      const blob = await seal(realm!, locker!, token, payload);
      const { store, close } = await openStore(g);
      try {
        await store.setVault(realm!, locker!, blob);
        await store.wake(`sealed ${realm}:${locker}`);
      } finally {
        close();
      }
      out(`sealed ${Object.keys(payload).length} key(s) into vault:${realm}:${locker}`);
      return 0;
    },
  },

  'secrets list': {
    summary: 'list sealed lockers (never values)',
    help: 'ozwald secrets list [REALM] [--json]\n\nLists the lockers sealed in Redis: realm, locker, envelope format, when sealed.\n\nexample: ozwald secrets list demo',
    options: { json: { type: 'boolean' } },
    async run(g, v, pos) {
      const { store, close } = await openStore(g);
      try {
        const all = (await store.listVault()).filter((x) => !pos[0] || x.realm === pos[0]);
        const rows = all.map((x) => {
          try {
            const i = inspect(x.blob);
            return { realm: x.realm, locker: x.locker, format: i.format === 'ozv1' ? 'v1' : 'legacy-fernet', sealedAt: i.sealedAt ?? null };
          } catch {
            return { realm: x.realm, locker: x.locker, format: 'unreadable', sealedAt: null };
          }
        });
        if (v.json) out(JSON.stringify(rows, null, 2));
        else if (!rows.length) out('no lockers sealed');
        else for (const r of rows) out(`${r.realm}\t${r.locker}\t${r.format}\t${r.sealedAt ?? '-'}`);
        return 0;
      } finally {
        close();
      }
    },
  },

  'secrets rm': {
    summary: 'delete a sealed locker',
    help: 'ozwald secrets rm REALM LOCKER\n\nDeletes vault:REALM:LOCKER. Running containers keep their environment.\n\nexample: ozwald secrets rm demo api-keys',
    options: {},
    async run(g, _v, pos) {
      const [realm, locker] = need(pos, 2, 'REALM LOCKER').map((x, i) => checkName(i ? 'locker' : 'realm', x));
      const { store, close } = await openStore(g);
      try {
        if (!(await store.delVault(realm!, locker!))) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${locker}`);
        out(`deleted vault:${realm}:${locker}`);
        return 0;
      } finally {
        close();
      }
    },
  },

  unlock: {
    summary: 'deliver a token for a locker (short-lived unlock key)',
    help: `ozwald unlock REALM LOCKER [--ttl SECONDS] [--wait]

Writes the token to unlock:REALM:LOCKER for --ttl seconds (default ${UNLOCK_TTL_DEFAULT}, at most
${UNLOCK_TTL_MAX}); the controller takes it at once, opens the locker and starts what
waited for it. With --wait, reports what happened.

example: ozwald unlock demo api-keys --wait`,
    options: { ttl: { type: 'string' }, wait: { type: 'boolean' }, ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = need(pos, 2, 'REALM LOCKER').map((x, i) => checkName(i ? 'locker' : 'realm', x));
      const ttl = parseTtl(v.ttl);
      const token = await readToken(v as TokenOptions);
      const { store, close } = await openStore(g);
      try {
        if ((await store.getVault(realm!, locker!)) === null) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${locker}`);
        await store.setUnlock(realm!, locker!, token, ttl, Date.now());
        out(`unlock:${realm}:${locker} written (expires in ${ttl}s)`);
        if (!v.wait) return 0;
        return await waitForUnlock(store, realm!, locker!, ttl);
      } finally {
        close();
      }
    },
  },
};

async function waitForUnlock(store: import('../state/store.js').Store, realm: string, locker: string, ttl: number): Promise<number> {
  const deadline = Date.now() + Math.min(ttl, 60) * 1000;
  const started = Date.now();
  const before = new Map((await store.readStatuses()).map((s) => [`${s.realm}/${s.instance}`, s]));
  const waiting = [...before.values()].filter((s) => s.realm === realm && s.phase === 'Locked' && s.lockers.includes(locker));
  if (waiting.length === 0) {
    out(`no instance is waiting for ${realm}:${locker}; the key expires in ${ttl}s unless a controller takes it`);
    return 0;
  }
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = new Map((await store.readStatuses()).map((s) => [`${s.realm}/${s.instance}`, s]));
    const settled = waiting.map((w) => now.get(`${w.realm}/${w.instance}`)).filter((s): s is InstanceStatus => !!s && Date.parse(s.since) >= started - 1000 && s.phase !== 'Starting' && s.phase !== 'Pending' && !(s.phase === 'Locked' && s.reason === 'WaitingForUnlock' && s.lockers.includes(locker)));
    if (settled.length === waiting.length) {
      let bad = 0;
      for (const s of settled) {
        out(`${s.realm}:${s.instance}: ${s.phase} (${s.reason}) ${s.message}`);
        if (s.phase !== 'Running' && !(s.phase === 'Locked' && s.reason === 'WaitingForUnlock')) bad++;
      }
      return bad ? 1 : 0;
    }
  }
  out(`timed out waiting for the controller to take unlock:${realm}:${locker} (is \`ozwald run\` running?)`);
  return 1;
}
