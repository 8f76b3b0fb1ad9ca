import { loadManifests } from '../config/load.js';
import { manifestJsonSchema } from '../config/schema.js';
import { digestDiff, specDigest } from '../config/resolve.js';
import { formatProblem } from '../config/yaml.js';
import { Controller } from '../controller/controller.js';
import { desiredSet, envCollisions, serviceDependencies } from '../controller/desired.js';
import { plan } from '../controller/planner.js';
import { OzwError } from '../errors.js';
import { SecretScrubber } from '../log.js';
import { Metrics, serveMetrics } from '../controller/metrics.js';
import { Runtime } from '../runtime/docker.js';
import { UNLOCK_TTL_DEFAULT, UNLOCK_TTL_MAX } from '../state/keys.js';
import type { ControllerStatus, InstanceStatus } from '../state/status.js';
import { connectRedis, ensureConnected, Store } from '../state/store.js';
import { buildApi } from '../api/server.js';
import { defaultRuntimeBase, EnvFileDir } from '../vault/envfile.js';
import { openStore, runtimeDir, type Globals } from './context.js';
import { readToken, type TokenOptions } from './token.js';
import { SECRETS_COMMANDS } from './secrets.js';
import { SERVICES_COMMANDS } from './services.js';
import { checkName, need, out, parseTtl, parseListen, loggerFromOptions, loadOrThrow, notFound, TOKEN_OPTIONS, GLOBAL_HELP, type Command } from './shared.js';

function renderStatus(say: (s: string) => void, g: Globals, instances: InstanceStatus[], controller: ControllerStatus | null): void {
  if (!controller) say(`no controller has reported for provisioner "${g.provisioner}" yet (is \`ozwald run\` running?)`);
  else {
    const age = Date.now() - Date.parse(controller.heartbeat);
    const limit = Math.max(3 * (controller.resyncMs ?? 10_000), 30_000);
    if (controller.stopped) say(`controller: stopped at ${controller.heartbeat}; the phases below are as it last saw them`);
    else if (age > limit) say(`controller: no heartbeat for ${Math.round(age / 1000)}s (is \`ozwald run\` running?); the phases below may be stale`);
    else if (controller.holder) say(`controller: ${controller.holder}`);
  }
  if (controller && !controller.manifests.ok) {
    say(`manifests: ERROR (acting on the last good set, loaded ${controller.manifests.loadedAt ?? 'never'})`);
    for (const e of controller.manifests.errors) say(`  ${e}`);
  }
  if (controller && !controller.docker.ok) say(`docker: unreachable: ${controller.docker.error ?? ''}`);
  if (instances.length) say(statusTable(instances));
  else if (controller) say('no desired instances');
}

/** Redraws `status` when anything in it changes (polled every 500 ms; cheap: one HGETALL, one GET). */
async function watchStatus(g: Globals): Promise<number> {
  let last = '';
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  process.once('SIGTERM', () => (stop = true));
  const tty = process.stdout.isTTY;
  while (!stop) {
    const lines: string[] = [];
    const capture = (s: string) => lines.push(s);
    const { store, close } = await openStore(g);
    try {
      const [instances, controller] = await Promise.all([store.readStatuses(), store.readController()]);
      renderStatus(capture, g, instances, controller);
    } finally {
      close();
    }
    const frame = lines.join('\n');
    if (frame !== last) {
      if (tty) process.stdout.write('\x1b[2J\x1b[H');
      out(`${new Date().toISOString()}  provisioner ${g.provisioner}\n${frame}${tty ? '' : '\n---'}`);
      last = frame;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return 0;
}


function numberOption(v: unknown, name: string, min: number, max: number, dflt: number, integer: boolean): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (String(v).trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new OzwError('OZW_USAGE', `${name} ${String(v)}: give ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return n;
}

function statusTable(rows: InstanceStatus[]): string {
  const head = ['INSTANCE', 'SERVICE', 'PHASE', 'REASON', 'MESSAGE'];
  const body = rows.map((s) => [
    `${s.realm}:${s.instance}`,
    s.variety || s.profile ? `${s.service}[${s.variety ?? ''}]${s.profile ? `[${s.profile}]` : ''}` : s.service,
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
    help: `ozwald run [--resync SECONDS] [--concurrency N] [--log-level LEVEL] [--log-format json|pretty] [--metrics-listen HOST:PORT]

Reconciles the manifests (and the dynamic set in Redis) with this provisioner's
containers until interrupted. Containers keep running when it stops.

  --resync SECONDS    full resync period, the safety net under events (default 10)
  --concurrency N     launches/removals at once (default 4)
  --log-level LEVEL   trace, debug, info, warn, error, fatal or silent (default info,
                      or OZWALD_LOG_LEVEL)
  --log-format F      json (JSON lines on stderr; the default unless stderr is a
                      terminal) or pretty (one readable line each; NO_COLOR honoured)
  --metrics-listen HOST:PORT
                      serve Prometheus metrics at http://HOST:PORT/metrics

example: ozwald --manifests ./manifests run --resync 10
${GLOBAL_HELP}`,
    options: { resync: { type: 'string' }, concurrency: { type: 'string' }, 'log-level': { type: 'string' }, 'log-format': { type: 'string' }, 'metrics-listen': { type: 'string' } },
    async run(g, v) {
      const resync = numberOption(v.resync, '--resync', 1, 3600, 10, false);
      const concurrency = numberOption(v.concurrency, '--concurrency', 1, 64, 4, true);
      const scrubber = new SecretScrubber();
      const logger = loggerFromOptions(v, scrubber);
      const metrics = new Metrics();
      const ml = v['metrics-listen'] ? parseListen('--metrics-listen', v['metrics-listen'] as string, '127.0.0.1:9464') : undefined;
      const metricsServer = ml ? await serveMetrics(metrics, ml.host, ml.port) : undefined;
      if (metricsServer) logger.info({ listen: v['metrics-listen'] }, 'serving metrics at /metrics');
      const redis = connectRedis(g.redis, { forever: true });
      await ensureConnected(redis, g.redis);
      const runtime = new Runtime(g.provisioner);
      await runtime.ping();
      const ctl = new Controller({
        provisioner: g.provisioner, manifests: g.manifests, redisUrl: g.redis, redis, runtime, logger,
        envDir: new EnvFileDir(runtimeDir(defaultRuntimeBase(), g.provisioner)),
        resyncMs: resync * 1000,
        concurrency, metrics, scrubber,
      });
      const stopped = new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          logger.info({ signal: sig }, 'stopping; containers keep running');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      // start() waits while another controller holds this provisioner's lease.
      void ctl.start().then(() => logger.info({ provisioner: g.provisioner, manifests: g.manifests }, 'controller running'), (e: unknown) => {
        logger.fatal({ err: (e as Error).message }, 'controller failed to start');
        process.exit(1);
      });
      await stopped;
      await ctl.stop();
      metricsServer?.close();
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
      const { model, problems, warnings = [] } = await loadManifests(path);
      if (v.json) out(JSON.stringify({ ok: !!model, problems, warnings }, null, 2));
      else if (model) {
        for (const wp of warnings) process.stderr.write(`warning: ${formatProblem(wp)}\n`);
        let n = 0;
        for (const r of model.realms.values()) n += r.persistent.size;
        out(`${path}: valid (${model.realms.size} realm(s), ${n} persistent service(s))`);
      } else if (notFound(problems)) {
        process.stderr.write(`ozwald: OZW_MANIFEST_NOT_FOUND: ${formatProblem(problems[0]!)}\n`);
      } else for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
      return model ? 0 : 1;
    },
  },

  schema: {
    summary: 'print the JSON Schema of the manifest format',
    help: 'ozwald schema\n\nPrints the JSON Schema of the manifest format (for yaml-language-server).\n\nexample: ozwald schema > ozwald.schema.json',
    options: {},
    async run() {
      out(JSON.stringify(manifestJsonSchema(), null, 2));
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
        const p = plan({ provisioner: g.provisioner, desired, invalid, observed, unlockKeys: presence.unlock, vaultKeys: presence.vault, vaultVersions: presence.versions, legacyLockers: presence.legacy, serviceDeps: serviceDependencies(model), inFlight: new Set(), backoff: new Map(), now: Date.now() });
        const lines = p.actions.map((a) =>
          a.kind === 'remove' ? `- remove  ${a.container.name} (${a.why})`
            : a.kind === 'create' ? `+ create  ${a.key} image=${a.desired.spec.image}${a.lockers.length ? ` lockers=${a.lockers.join(',')}` : ''}`
              : `~ replace ${a.key} (${a.why}${a.why === 'spec-changed' ? `: ${digestDiff(a.old.digest, specDigest(a.desired.spec)).join(', ')}` : ''})`);
        const locked = p.statuses.filter((s) => s.phase === 'Locked' || s.phase === 'Failed');
        const warnings = desired.flatMap((d) => envCollisions(d, presence.keyNames));
        for (const wline of warnings) process.stderr.write(`ozwald: warning: ${wline}\n`);
        if (v.json) out(JSON.stringify({ warnings, actions: p.actions.map((a) => ({ kind: a.kind, key: a.key, ...(a.kind === 'remove' ? { container: a.container.name, why: a.why } : a.kind === 'replace' ? { why: a.why, changed: a.why === 'spec-changed' ? digestDiff(a.old.digest, specDigest(a.desired.spec)) : [] } : {}) })), blocked: locked }, null, 2));
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
    help: 'ozwald status [--json] [--watch]\n\nShows the status the controller last recorded for each desired instance.\nWith --watch, redraws whenever it changes, until Ctrl-C.\n\nexample: ozwald status --watch',
    options: { json: { type: 'boolean' }, watch: { type: 'boolean' } },
    async run(g, v) {
      if (v.watch && !v.json) return watchStatus(g);
      const { store, close } = await openStore(g);
      try {
        const [instances, controller] = await Promise.all([store.readStatuses(), store.readController()]);
        if (v.json) {
          out(JSON.stringify({ provisioner: g.provisioner, controller, instances }, null, 2));
          return 0;
        }
        renderStatus(out, g, instances, controller);
        return 0;
      } finally {
        close();
      }
    },
  },

  ...SECRETS_COMMANDS,
  ...SERVICES_COMMANDS,

  down: {
    summary: 'stop and remove everything this provisioner runs',
    help: `ozwald down [--yes]

Stops and removes every container and network labelled with this
provisioner, and clears its status records. Refuses while an \`ozwald run\`
for this provisioner is active (it would start them again): stop it first.
Sealed lockers and the dynamic set stay. Without --yes, only lists what it would remove.

example: ozwald --provisioner local down --yes`,
    options: { yes: { type: 'boolean' } },
    async run(g, v) {
      const { store, redis, close } = await openStore(g);
      try {
        const holder = await redis.get(store.k.lease);
        if (holder) throw new OzwError('OZW_CONFLICT', `a controller is running provisioner "${g.provisioner}" (${holder}); stop it first, or it would start everything again`, [], 'stop that `ozwald run` (Ctrl-C, or `systemctl stop ozwald`), then run `ozwald down` again');
        const runtime = new Runtime(g.provisioner);
        await runtime.ping();
        const containers = await runtime.list();
        if (!v.yes) {
          for (const c of containers) out(`would remove ${c.name} (${c.state})`);
          out(containers.length ? 'run again with --yes to remove them' : 'nothing to remove');
          return 0;
        }
        for (const c of containers) {
          await runtime.stopAndRemove(c);
          out(`removed ${c.name}`);
        }
        for (const n of await runtime.pruneNetworks(new Set())) out(`removed network ${n}`);
        await redis.del(store.k.status, store.k.controller);
        return 0;
      } finally {
        close();
      }
    },
  },

  api: {
    summary: 'serve the HTTP provisioner API (default 127.0.0.1:8000)',
    help: `ozwald api [--listen HOST:PORT]

Serves the provisioner API (the Python Ozwald's paths and bodies) until
SIGINT/SIGTERM. Every route but /health needs Authorization: Bearer
$OZWALD_SYSTEM_KEY; without OZWALD_SYSTEM_KEY it refuses to start.
/openapi.json describes the routes.

example: ozwald api --listen 127.0.0.1:8000   (with OZWALD_SYSTEM_KEY in the environment)
${GLOBAL_HELP}`,
    options: { listen: { type: 'string' }, 'log-level': { type: 'string' }, 'log-format': { type: 'string' } },
    async run(g, v) {
      const listen = parseListen('--listen', (v.listen as string | undefined) ?? '127.0.0.1:8000', '127.0.0.1:8000');
      const systemKey = process.env.OZWALD_SYSTEM_KEY ?? '';
      const keyFix = 'export OZWALD_SYSTEM_KEY="$(head -c 32 /dev/urandom | base64)" and give the same key to its clients';
      if (!systemKey) throw new OzwError('OZW_USAGE', 'OZWALD_SYSTEM_KEY is not set: the API will not start without the bearer key its clients must send', [], keyFix);
      // A key anyone could guess guards nothing (the length is said, never the key).
      if (systemKey.length < 16) throw new OzwError('OZW_USAGE', `OZWALD_SYSTEM_KEY is ${systemKey.length} characters long; the API wants at least 16`, [], keyFix);
      const scrubber = new SecretScrubber();
      scrubber.add([systemKey]);
      const logger = loggerFromOptions(v, scrubber);
      const redis = connectRedis(g.redis, { forever: true, failFast: true });
      await ensureConnected(redis, g.redis);
      const api = await buildApi({ store: new Store(redis, g.provisioner), manifests: g.manifests, systemKey, logger });
      await api.listen(listen.host, listen.port);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await api.close();
      redis.disconnect();
      return 0;
    },
  },

  unlock: {
    summary: 'deliver a token for a locker (short-lived unlock key)',
    help: `ozwald unlock REALM LOCKER [--ttl SECONDS] [--wait]

Writes the token to unlock:REALM:LOCKER for --ttl seconds (default ${UNLOCK_TTL_DEFAULT}, at most
${UNLOCK_TTL_MAX}); the controller takes it at once, opens the locker and starts what
waited for it. With --wait, reports what happened. The token comes from
--token-stdin, --token-file F, OZWALD_TOKEN, or a no-echo prompt on a terminal.

example: ozwald unlock demo api-keys --wait`,
    options: { ttl: { type: 'string' }, wait: { type: 'boolean' }, ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = need(pos, 2, 'REALM LOCKER').map((x, i) => checkName(i ? 'locker' : 'realm', x));
      const ttl = parseTtl(v.ttl);
      const token = await readToken(v as TokenOptions);
      const { store, close } = await openStore(g);
      try {
        if ((await store.getVault(realm!, locker!)) === null) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${locker}`);
        // Who waits for this locker is read before the key is written: the
        // controller may act on it before this process looks again.
        const waiting = v.wait ? (await store.readStatuses()).filter((s) => waitsForLocker(s, realm!, locker!)).map((s) => `${s.realm}/${s.instance}`) : [];
        await store.setUnlock(realm!, locker!, token, ttl, Date.now());
        out(`unlock:${realm}:${locker} written (expires in ${ttl}s)`);
        if (!v.wait) return 0;
        return await waitForUnlock(store, realm!, locker!, ttl, waiting);
      } finally {
        close();
      }
    },
  },
};

/**
 * After an unlock: waits until the controller has taken the key (or left it
 * for instances that still wait for other lockers) and every instance that
 * waited for this locker has settled, then says what happened to each.
 */
function waitsForLocker(s: InstanceStatus, realm: string, locker: string): boolean {
  // Locked, or running with stale secrets (StaleSecrets, or the reason the last refresh failed).
  return s.realm === realm && s.lockers.includes(locker) && (s.phase === 'Locked' || (s.phase === 'Running' && s.reason !== 'Running'));
}

async function waitForUnlock(store: import('../state/store.js').Store, realm: string, locker: string, ttl: number, waiting: string[]): Promise<number> {
  const deadline = Date.now() + Math.min(ttl, 60) * 1000;
  if (waiting.length === 0) {
    out(`no instance is waiting for ${realm}:${locker}; the key expires in ${ttl}s unless a controller takes it`);
    return 0;
  }
  const unlockName = `unlock:${realm}:${locker}`;
  let goneSince: number | undefined;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const keyThere = (await store.redis.exists(unlockName)) === 1;
    if (!keyThere) goneSince ??= Date.now();
    // Give the controller a moment to record the outcome once it took the key.
    if (!keyThere && Date.now() - goneSince! < 1000) continue;
    const now = new Map((await store.readStatuses()).map((s) => [`${s.realm}/${s.instance}`, s]));
    const rows = waiting.map((k) => now.get(k));
    // Settled: started or failed; or still locked for a reason other than this
    // key (a wrong token, or other lockers it waits for).
    // A reason left from an earlier unlock only counts once this key is gone.
    // Started, then exited at once: Locked again, its token used up.
    const stoppedAgain = (s: InstanceStatus) => !keyThere && s.phase === 'Locked' && s.reason === 'WaitingForUnlock' && s.message.startsWith('its container');
    const settled = rows.every((s) => !s || stoppedAgain(s) || (s.phase === 'Running' && (s.reason === 'Running' || (!keyThere && s.reason !== 'StaleSecrets'))) || s.phase === 'BackOff' || s.phase === 'Failed' ||
      (s.phase === 'Locked' && (!s.lockers.includes(locker) || (!keyThere && s.reason !== 'WaitingForUnlock' && s.reason !== 'LockerEmpty'))));
    if (!settled) continue;
    let bad = 0;
    for (const [i, s] of rows.entries()) {
      if (!s) {
        out(`${waiting[i]!.replace('/', ':')}: no longer desired`);
        continue;
      }
      const started = s.phase === 'Running' && s.reason === 'Running';
      const waits = s.phase === 'Locked' && s.reason === 'WaitingForUnlock' && !stoppedAgain(s);
      const what = started ? 'started' : stoppedAgain(s) ? 'started, then stopped' : waits ? `still waits for ${s.lockers.join(', ')}` : s.phase === 'Running' ? 'not refreshed, still running its old secrets' : 'not started';
      out(`${s.realm}:${s.instance}: ${what}: ${s.phase} (${s.reason}) ${s.message}`);
      if (!started && !waits) bad++;
    }
    return bad ? 1 : 0;
  }
  out(`timed out: ${unlockName} was not taken (is \`ozwald run\` running for provisioner "${store.provisioner}"?)`);
  return 1;
}
