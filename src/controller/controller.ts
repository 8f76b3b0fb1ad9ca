// The reconciling controller: watches manifests, Redis and Docker, plans with
// the pure planner and applies actions through a work queue.
import PQueue from 'p-queue';
import { watch, type FSWatcher } from 'chokidar';
import type { Redis } from 'ioredis';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Lease, LEASE_RENEW_MS, LEASE_RETRY_MS, LEASE_TTL_MS } from '../state/lease.js';
import { existsSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { readSources } from '../config/load.js';
import { buildModel, type Model } from '../config/model.js';
import { formatProblem } from '../config/yaml.js';
import { systemClock, type Clock } from '../clock.js';
import { describe, isOzwError, OzwError } from '../errors.js';
import { SecretScrubber, type Logger } from '../log.js';
import { Metrics } from './metrics.js';
import { Runtime, type LaunchSpec, type ObservedContainer } from '../runtime/docker.js';
import { containerName } from '../runtime/labels.js';
import { Store, redactUrl } from '../state/store.js';
import type { ControllerStatus, InstanceStatus } from '../state/status.js';
import { EnvFileDir, renderEnvFile } from '../vault/envfile.js';
import { open as openLocker } from '../vault/envelope.js';
import { Backoff } from './backoff.js';
import { plan, secretsVersion, type Action, type PlannedStatus } from './planner.js';
import { desiredSet, serviceDependencies } from './desired.js';
import { Coalescer } from './coalescer.js';
import { specDigest, type ResolvedInstance } from '../config/resolve.js';

export interface ControllerOptions {
  provisioner: string;
  manifests: string;
  redisUrl: string;
  redis: Redis;
  runtime: Runtime;
  envDir: EnvFileDir;
  logger: Logger;
  clock?: Clock;
  /** Full resync period, the safety net under the event triggers. */
  resyncMs?: number;
  /** How long the manifests must be quiet before a reload. */
  settleMs?: number;
  concurrency?: number;
  /** Least time between the starts of two passes (bursts of triggers coalesce). */
  minPassGapMs?: number;
  metrics?: Metrics;
  /** Secret values in use are registered here and cut out of log lines. */
  scrubber?: SecretScrubber;
}

type Launch = { action: Extract<Action, { kind: 'create' | 'replace' }>; payloads: Record<string, string>[]; secrets: string };

export class Controller {
  private readonly o: Required<Omit<ControllerOptions, 'clock' | 'metrics' | 'scrubber'>> & { clock: Clock; metrics: Metrics; scrubber: SecretScrubber };
  private readonly store: Store;
  private readonly queue: PQueue;
  private readonly inFlight = new Set<string>();
  private readonly backoff = new Backoff();
  /** Why a locker service is still Locked (wrong token, failed launch), for the spec it happened to. */
  private readonly lockedReasons = new Map<string, { reason: string; message: string; hash: string }>();
  private readonly lastStatus = new Map<string, InstanceStatus>();
  private writtenKeys = new Set<string>();
  // What Redis holds of our status hash is only known while nothing could
  // have changed it behind our back: a reconnect (the server may have
  // restarted empty, or failed over), a failed write, a new lease and each
  // resync bump the epoch, and the next pass re-reads the keys and writes
  // every record again (one pipeline), so status heals on its own.
  private statusEpoch = 0;
  private syncedEpoch = -1;
  private redisLost = false;
  private readonly onRedisClose = () => {
    this.statusEpoch++;
    if (this.redisLost || this.stopped) return;
    this.redisLost = true;
    this.o.metrics.redisUp.set(0);
    this.log.error({ code: 'OZW_REDIS_UNAVAILABLE', redis: redactUrl(this.o.redisUrl) }, 'lost Redis; containers keep running, nothing is pruned, reconnecting with back-off');
  };
  private readonly onRedisReady = () => {
    this.statusEpoch++;
    if (!this.redisLost) return;
    this.redisLost = false;
    this.o.metrics.redisUp.set(1);
    this.log.info({ redis: redactUrl(this.o.redisUrl) }, 'Redis reachable again; resyncing');
    this.trigger('redis back');
  };
  private model: Model | undefined;
  private manifestErrors: string[] = [];
  private loadedAt: string | null = null;
  private dockerOk = true;
  private dockerError: string | undefined;
  private watcher: FSWatcher | undefined;
  private sub: Redis | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private reloadTimer: { cancel(): void } | undefined;
  private resyncTimer: { cancel(): void } | undefined;
  private wakeTimers: { cancel(): void }[] = [];
  private readonly passes: Coalescer;
  private readonly lease: Lease;
  private leader = false;
  private leaseRenewedAt = 0;
  private renewTimer: { cancel(): void } | undefined;
  private lastFingerprint: string | undefined;
  // Resolving every instance is most of a pass's CPU; it only changes with
  // the model or the dynamic set, so keep the last answer (the profile of a
  // converge of 100 showed a third of the pass in it).
  private resolved: { model: Model; dynamic: string; set: ReturnType<typeof desiredSet>; deps: Map<string, string[]>; hasDeps: boolean } | undefined;
  private rootMissing = false;
  /** dev:inode:birth time of the watched root: a folder replaced between resyncs has another. */
  private watchedId: string | undefined;
  private prunedFor: string | undefined;
  /** The last pass left an instance waiting on depends-on (or removed something while depends-on is in use). */
  private waitingOnDeps = false;

  constructor(opts: ControllerOptions) {
    this.o = { clock: systemClock, resyncMs: 10_000, settleMs: 300, concurrency: 4, minPassGapMs: 100, ...opts, metrics: opts.metrics ?? new Metrics(), scrubber: opts.scrubber ?? new SecretScrubber() };
    this.store = new Store(opts.redis, opts.provisioner);
    this.lease = new Lease(opts.redis, this.store.k.lease, `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`);
    this.queue = new PQueue({ concurrency: this.o.concurrency });
    this.passes = new Coalescer(
      () => this.pass(),
      (e) => this.log.error({ err: describe(e) }, 'reconcile pass failed; retrying on the next trigger'),
      undefined,
      this.o.minPassGapMs,
      () => this.o.clock.now(),
      (ms) => new Promise<void>((r) => this.o.clock.setTimeout(r, ms)),
    );
  }

  get log(): Logger {
    return this.o.logger;
  }

  /**
   * Waits for this provisioner's lease (a second `ozwald run` with the same
   * name stands by), then starts watching and reconciling. Resolves once
   * active, or when stopped while standing by.
   */
  async start(): Promise<void> {
    this.o.redis.on('close', this.onRedisClose);
    this.o.redis.on('ready', this.onRedisReady);
    await this.becomeLeader();
    if (this.stopped) return;
    await this.reload();
    this.watchManifests();
    await this.subscribe();
    void this.followEvents();
    this.scheduleResync();
    this.trigger('start');
  }

  private async becomeLeader(): Promise<void> {
    let told = false;
    while (!this.stopped) {
      try {
        if (await this.lease.tryAcquire()) break;
        if (!told) {
          this.log.warn({ provisioner: this.o.provisioner, holder: await this.lease.holderNow() }, 'another controller runs this provisioner; standing by');
          told = true;
        }
      } catch (e) {
        this.log.warn({ err: describe(e) }, 'cannot reach Redis for the lease; retrying');
      }
      await new Promise<void>((r) => this.o.clock.setTimeout(r, LEASE_RETRY_MS));
    }
    if (this.stopped) return;
    this.leader = true;
    this.o.metrics.leader.set(1);
    this.leaseRenewedAt = this.o.clock.now();
    this.log.info({ provisioner: this.o.provisioner, holder: this.lease.holder }, 'holding the lease; active');
    // Only the active controller may sweep: a standby would delete the
    // leader's env-file in the middle of its launch.
    const swept = await this.o.envDir.sweep();
    if (swept) this.log.warn({ swept, dir: this.o.envDir.dir }, 'removed env-files left by an earlier run');
    this.statusEpoch++;
    this.scheduleRenew();
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.o.clock.setTimeout(() => reject(new Error(`${what}: no answer from Redis within ${ms} ms`)), ms);
      p.then((v) => (timer.cancel(), resolve(v)), (e: unknown) => (timer.cancel(), reject(e)));
    });
  }

  private scheduleRenew(): void {
    this.renewTimer = this.o.clock.setTimeout(() => void this.renewLease(), LEASE_RENEW_MS);
  }

  private async renewLease(): Promise<void> {
    if (this.stopped) return;
    try {
      // While Redis is away a command waits in the client's queue, not
      // failing: bound the wait so the lease's age is judged as it passes.
      if (await this.withTimeout(this.lease.renew(), LEASE_RETRY_MS, 'lease renewal')) {
        this.leaseRenewedAt = this.o.clock.now();
        this.scheduleRenew();
        return;
      }
      this.log.error({ holder: await this.lease.holderNow().catch(() => null) }, 'lost the lease to another controller; standing by');
    } catch (e) {
      // Redis away: keep acting while the lease we hold cannot have lapsed.
      if (this.o.clock.now() - this.leaseRenewedAt < LEASE_TTL_MS - LEASE_RENEW_MS) {
        this.log.warn({ err: describe(e) }, 'cannot renew the lease; retrying');
        this.renewTimer = this.o.clock.setTimeout(() => void this.renewLease(), LEASE_RETRY_MS);
        return;
      }
      this.log.error({ err: describe(e) }, 'could not renew the lease in time; standing by');
    }
    this.leader = false;
    this.o.metrics.leader.set(0);
    await this.becomeLeader();
    if (this.leader) this.trigger('lease regained');
  }

  // --- triggers ---

  /** Asks for a reconcile pass; triggers while a pass runs collapse into one more pass. */
  trigger(why: string): void {
    if (this.stopped) return;
    this.log.debug({ why }, 'trigger');
    this.passes.trigger();
  }

  private scheduleResync(): void {
    this.resyncTimer = this.o.clock.setTimeout(() => {
      // The resync also re-reads the manifests: a safety net for changes a
      // watcher can miss (the whole folder replaced, a network filesystem).
      void this.rewatchIfNeeded()
        .then(() => this.reload({ fromResync: true }))
        .catch((e) => this.log.warn({ err: describe(e) }, 'manifest reload failed'))
        .then(() => {
          this.statusEpoch++;
          this.trigger('resync');
        });
      this.scheduleResync();
    }, this.o.resyncMs);
  }

  /** A watched folder that vanished and came back (even between two resyncs: another inode) needs a new watcher. */
  private async rewatchIfNeeded(): Promise<void> {
    const exists = existsSync(this.o.manifests);
    if (!exists) {
      this.rootMissing = true;
      return;
    }
    if ((this.rootMissing || this.rootId() !== this.watchedId) && !this.stopped) {
      this.rootMissing = false;
      await this.watcher?.close();
      this.watchManifests();
      this.log.info({ path: this.o.manifests }, 'manifests folder is back (or was replaced); watching it again');
    }
  }

  private rootId(): string | undefined {
    try {
      // The inode alone is not enough: ext4 hands a folder made right after
      // an rm -rf the same number back. Its birth time differs.
      const st = statSync(this.o.manifests);
      return `${st.dev}:${st.ino}:${st.birthtimeMs}`;
    } catch {
      return undefined;
    }
  }

  /** Reloads once the tree has been quiet for settleMs (another change restarts the wait). */
  private scheduleReload(): void {
    this.reloadTimer?.cancel();
    this.reloadTimer = this.o.clock.setTimeout(() => void this.rewatchIfNeeded().then(() => this.reload()).then(() => this.trigger('manifests')), this.o.settleMs);
  }

  private watchManifests(): void {
    // Dot entries are watched too (a ConfigMap swaps a ..data symlink); the
    // reload reads a settled snapshot of the whole tree, never one file.
    this.watchedId = this.rootId();
    this.watcher = watch(this.o.manifests, { ignoreInitial: true, persistent: true, followSymlinks: true });
    const root = resolvePath(this.o.manifests);
    const changed = (ev: string, p: string) => {
      // The root itself went away: this watcher sees nothing of a new one,
      // even one that gets the same inode back (rm -rf, then mkdir).
      if ((ev === 'unlinkDir' || ev === 'unlink') && resolvePath(p) === root) this.rootMissing = true;
      this.scheduleReload();
    };
    this.watcher.on('all', changed);
    this.watcher.on('error', (e) => this.log.warn({ err: describe(e) }, 'manifest watcher error'));
  }

  private async subscribe(): Promise<void> {
    const sub = this.o.redis.duplicate();
    sub.on('error', () => {});
    this.sub = sub;
    const db = (this.o.redis.options.db ?? 0) as number;
    sub.on('message', () => this.trigger('wake'));
    sub.on('pmessage', () => this.trigger('keyspace'));
    await sub.subscribe(this.store.k.wake);
    // Also hears unlock keys written by other tools, when the server has
    // keyspace notifications on; harmless when it has not.
    await sub.psubscribe(`__keyspace@${db}__:unlock:*`, `__keyspace@${db}__:vault:*`);
  }

  private async followEvents(): Promise<void> {
    let delay = 500;
    while (!this.stopped) {
      try {
        await this.o.runtime.events((ev) => {
          if (['die', 'destroy', 'stop', 'oom', 'kill'].includes(ev.action)) {
            this.trigger(`docker ${ev.action}`);
            // The engine may report 'die' a moment before a list shows the
            // container as exited: look again shortly after.
            this.o.clock.setTimeout(() => this.trigger(`docker ${ev.action} (settled)`), 300);
          }
        }, this.abort.signal);
        delay = 500;
      } catch (e) {
        this.log.warn({ err: describe(e) }, 'docker events stream failed; reconnecting');
      }
      if (this.stopped) return;
      await new Promise<void>((r) => this.o.clock.setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
      this.trigger('events reconnected'); // cover the gap
    }
  }

  // --- manifests ---

  async reload(opts: { fromResync?: boolean } = {}): Promise<void> {
    const { sources, problems: readProblems } = await readSources(this.o.manifests);
    // Unchanged since the last load (the resync re-reads): nothing to do or say.
    const fingerprint = createHash('sha256').update(JSON.stringify([sources, readProblems.map(formatProblem)])).digest('hex');
    if (fingerprint === this.lastFingerprint) return;
    // A change the resync finds first (no watcher event yet, or a dead
    // watcher) may be a file in the middle of being written: take it only
    // once the tree has been quiet for settleMs, like a watched change.
    if (opts.fromResync) {
      this.scheduleReload();
      return;
    }
    this.lastFingerprint = fingerprint;
    const { model, problems, warnings = [] } = readProblems.length ? { model: undefined, problems: readProblems, warnings: [] } : buildModel(sources);
    if (model) {
      this.model = model;
      for (const wp of warnings) this.log.warn({ problem: formatProblem(wp) }, 'manifest field has no effect');
      this.manifestErrors = [];
      this.loadedAt = new Date(this.o.clock.now()).toISOString();
      this.log.info({ path: this.o.manifests, realms: [...model.realms.keys()] }, 'manifests loaded');
    } else {
      this.manifestErrors = problems.map(formatProblem);
      for (const line of this.manifestErrors) this.log.error({ code: 'OZW_MANIFEST_INVALID', problem: line }, 'manifests invalid; keeping the last good set');
    }
    await this.writeController().catch(() => {});
  }

  private async writeController(): Promise<void> {
    if (!this.leader) return;
    const s: ControllerStatus = {
      provisioner: this.o.provisioner,
      pid: process.pid,
      heartbeat: new Date(this.o.clock.now()).toISOString(),
      resyncMs: this.o.resyncMs,
      holder: this.lease.holder,
      ...(this.stopped ? { stopped: true } : {}),
      manifests: { path: this.o.manifests, ok: this.manifestErrors.length === 0 && this.model !== undefined, loadedAt: this.loadedAt, errors: this.manifestErrors },
      docker: { ok: this.dockerOk, ...(this.dockerError ? { error: this.dockerError } : {}) },
    };
    await this.store.writeController(s);
  }

  // --- one pass ---

  private async pass(): Promise<void> {
    if (!this.leader) return;
    const m = this.o.metrics;
    m.passes.inc();
    const endTimer = m.passDuration.startTimer();
    try {
      await this.passBody();
    } finally {
      endTimer();
      m.queueDepth.set(this.queue.size + this.queue.pending);
    }
  }

  private async passBody(): Promise<void> {
    const model = this.model;
    if (!model) {
      // Never loaded a good manifest set: do nothing rather than prune.
      await this.writeController().catch(() => {});
      return;
    }
    // What was in flight when the list was asked for: a launch that ends
    // while this pass waits on Docker or Redis was seen half-done (absent, or
    // "created"), so it is left to the pass its completion triggers — else a
    // healthy new container would be taken for a crashed one and recreated.
    const inFlightAtList = new Set(this.inFlight);
    let observed: ObservedContainer[];
    try {
      observed = await this.o.runtime.list();
      this.o.metrics.dockerUp.set(1);
      if (!this.dockerOk) this.log.info('docker engine reachable again');
      this.dockerOk = true;
      this.dockerError = undefined;
    } catch (e) {
      this.dockerOk = false;
      this.o.metrics.dockerUp.set(0);
      this.dockerError = describe(e);
      this.log.error({ code: 'OZW_DOCKER_UNAVAILABLE', err: this.dockerError }, 'cannot list containers; nothing changes until the engine answers');
      await this.writeController().catch(() => {});
      return;
    }
    let dynamic;
    try {
      dynamic = (await this.store.readDesired()).services;
      this.o.metrics.redisUp.set(1);
    } catch (e) {
      this.o.metrics.redisUp.set(0);
      throw e;
    }
    const dynKey = JSON.stringify(dynamic);
    if (this.resolved?.model !== model || this.resolved.dynamic !== dynKey) {
      const deps = serviceDependencies(model);
      this.resolved = { model, dynamic: dynKey, set: desiredSet(model, dynamic), deps, hasDeps: [...deps.values()].some((d) => d.length > 0) };
    }
    const { desired, invalid } = this.resolved.set;
    const pairs = new Map<string, { realm: string; locker: string }>();
    for (const d of desired) for (const l of d.spec.lockers) pairs.set(`${d.realm}:${l}`, { realm: d.realm, locker: l });
    const presence = await this.store.lockerPresence([...pairs.values()]);
    // The lease may have lapsed while this pass waited on Redis (an outage):
    // a controller that stood down acts on nothing.
    if (!this.leader) return;
    const now = this.o.clock.now();
    const bo = this.backoff.view();
    // A reason recorded for an older spec no longer explains anything.
    for (const d of desired) {
      const r = this.lockedReasons.get(d.key);
      if (r && r.hash !== d.hash) this.lockedReasons.delete(d.key);
    }
    const p = plan({
      provisioner: this.o.provisioner, desired, invalid, observed, unlockKeys: presence.unlock, vaultKeys: presence.vault,
      vaultVersions: presence.versions, legacyLockers: presence.legacy, serviceDeps: this.resolved.deps,
      wasRunning: new Set([...this.lastStatus].filter(([, st]) => st.phase === 'Running').map(([k]) => k)), inFlight: new Set([...inFlightAtList, ...this.inFlight]), backoff: bo, lockedReasons: this.lockedReasons, now,
    });
    for (const s of p.statuses) if (s.phase === 'Running') this.backoff.healthy(`${s.realm}/${s.instance}`, now);
    this.waitingOnDeps = p.statuses.some((s) => s.reason === 'WaitingForDependency') || (this.resolved.hasDeps && p.actions.some((a) => a.kind === 'remove'));
    this.log.debug({ actions: p.actions.map((a) => `${a.kind} ${a.key}`), inFlight: [...this.inFlight] }, 'planned');

    // Secret-bearing launches: take every needed token in one atomic step per
    // realm, open each locker once, and share the plaintext within this pass.
    const launches: Launch[] = [];
    const plain: Action[] = [];
    const needTokens = new Map<string, Set<string>>();
    for (const a of p.actions) {
      if (a.kind === 'remove') plain.push(a);
      else if (a.lockers.length === 0) launches.push({ action: a, payloads: [], secrets: '' });
      else {
        const set = needTokens.get(a.desired.realm) ?? new Set<string>();
        a.lockers.forEach((l) => set.add(l));
        needTokens.set(a.desired.realm, set);
      }
    }
    const opened = new Map<string, Record<string, string> | { error: OzwError }>();
    // Instances that stay Locked this pass: a token they also need goes back.
    const stillWaiting = p.statuses.filter((s) => s.phase === 'Locked');
    for (const [realm, lockerSet] of needTokens) {
      const lockers = [...lockerSet];
      const tokens = await this.store.takeTokens(realm, lockers, this.o.clock.now());
      if (!tokens) {
        this.log.info({ realm, lockers }, 'unlock keys vanished before they could be taken (expired or taken by another controller)');
        continue;
      }
      this.log.info({ realm, lockers }, 'took unlock keys');
      // Say at once that these tokens are being used (unlock --wait reads it).
      for (const a of p.actions) {
        if (a.kind !== 'remove' && a.desired.realm === realm && a.lockers.some((l) => lockerSet.has(l))) {
          await this.setStatus(a.key, { phase: 'Starting', reason: 'OpeningLockers', message: `opening ${a.lockers.map((l) => `vault:${realm}:${l}`).join(', ')}` });
        }
      }
      for (const l of lockers) {
        const id = `${realm}:${l}`;
        const taken = tokens.get(l)!;
        this.o.scrubber.add([taken.token]);
        try {
          const blob = await this.store.getVault(realm, l);
          if (blob === null) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${l}`);
          const { payload, format } = await openLocker(realm, l, taken.token, blob);
          if (format === 'fernet') this.log.warn({ realm, locker: l }, 'opened a legacy (Python Ozwald) envelope; re-seal it with `ozwald secrets set`');
          opened.set(id, payload);
          this.o.metrics.unlocks.inc({ result: 'consumed' });
          if (stillWaiting.some((s) => s.realm === realm && s.lockers.length > 0 && (desired.find((d) => d.realm === realm && d.name === s.instance)?.spec.lockers.includes(l) ?? false))) {
            await this.store.putBackToken(realm, l, taken, this.o.clock.now());
            this.log.info({ realm, locker: l }, 'left the unlock key for instances that still wait for other lockers');
          }
        } catch (e) {
          const err = isOzwError(e) ? e : new OzwError('OZW_VAULT_CORRUPT', describe(e));
          this.log.warn({ code: err.code, realm, locker: l, err: err.message }, 'locker did not open');
          this.o.metrics.unlocks.inc({ result: 'failed' });
          opened.set(id, { error: err });
        } finally {
          this.o.scrubber.remove([taken.token]);
        }
      }
      tokens.clear();
    }
    for (const a of p.actions) {
      if (a.kind === 'remove' || a.lockers.length === 0) continue;
      const results = a.lockers.map((l) => opened.get(`${a.desired.realm}:${l}`));
      if (results.some((r) => r === undefined)) continue; // tokens not taken: stays Locked, next pass retries
      const failed = results.find((r): r is { error: OzwError } => r !== undefined && 'error' in r);
      if (failed) {
        const reason = failed.error.code === 'OZW_VAULT_WRONG_TOKEN' ? 'WrongToken' : 'LockerUnreadable';
        this.lockedReasons.set(a.key, { reason, message: `${failed.error.message}; nothing was started — unlock again`, hash: a.desired.hash });
        const st = p.statuses.find((s) => `${s.realm}/${s.instance}` === a.key);
        // A container kept for its stale secrets still runs: it stays Running, with the reason.
        const stillRuns = a.kind === 'replace' && a.why === 'secrets-rotated' && a.old.running;
        if (st) Object.assign(st, { phase: stillRuns ? 'Running' : 'Locked', reason, message: this.lockedReasons.get(a.key)!.message, lockers: a.lockers });
        continue;
      }
      launches.push({ action: a, payloads: results as Record<string, string>[], secrets: secretsVersion(a.desired.realm, a.lockers, presence.versions) ?? '' });
    }

    for (const a of plain) this.enqueue(a.key, () => this.applyRemove(a as Extract<Action, { kind: 'remove' }>));
    for (const l of launches) {
      const st = p.statuses.find((s) => `${s.realm}/${s.instance}` === l.action.key);
      if (st) Object.assign(st, { phase: 'Starting', reason: 'Launching', message: 'docker run in progress' });
      this.enqueue(l.action.key, () => this.applyLaunch(l));
    }
    await this.writeStatuses(p.statuses, now);
    const phases: Record<string, number> = {};
    for (const st of p.statuses) phases[st.phase] = (phases[st.phase] ?? 0) + 1;
    this.o.metrics.setPhases(phases);
    await this.writeController().catch(() => {});
    this.scheduleBackoffWake(now);
    await this.pruneNetworks(desired);
  }

  /** Removes our networks nothing desires any more, once no launch is under way. */
  private async pruneNetworks(desired: ResolvedInstance[]): Promise<void> {
    if (this.inFlight.size > 0) return;
    const keep = new Set(desired.flatMap((d) => d.spec.networks));
    const sig = [...keep].sort().join(',');
    if (sig === this.prunedFor) return;
    try {
      const removed = await this.o.runtime.pruneNetworks(keep);
      if (removed.length) this.log.info({ networks: removed }, 'removed networks nothing uses');
      this.prunedFor = sig;
    } catch (e) {
      this.log.warn({ err: describe(e) }, 'could not prune networks');
    }
  }

  private scheduleBackoffWake(now: number): void {
    for (const t of this.wakeTimers.splice(0)) t.cancel();
    for (const e of this.backoff.view().values()) {
      if (e.until > now) this.wakeTimers.push(this.o.clock.setTimeout(() => this.trigger('backoff elapsed'), e.until - now + 5));
    }
  }

  private async writeStatuses(planned: PlannedStatus[], now: number): Promise<void> {
    const epoch = this.statusEpoch;
    const full = this.syncedEpoch !== epoch;
    if (full) this.writtenKeys = new Set(await this.o.redis.hkeys(this.store.k.status));
    const changed: InstanceStatus[] = [];
    const keep = new Set<string>();
    for (const s of planned) {
      const k = `${s.realm}/${s.instance}`;
      keep.add(k);
      const prev = this.lastStatus.get(k);
      const since = prev && prev.phase === s.phase && prev.reason === s.reason ? prev.since : new Date(now).toISOString();
      const next: InstanceStatus = { ...s, since };
      if (full || !prev || JSON.stringify(prev) !== JSON.stringify(next) || !this.writtenKeys.has(k)) changed.push(next);
      this.lastStatus.set(k, next);
    }
    const remove = [...this.writtenKeys].filter((k) => !keep.has(k));
    for (const k of remove) this.lastStatus.delete(k);
    try {
      await this.store.writeStatuses(changed, remove);
    } catch (e) {
      this.statusEpoch++;
      throw e;
    }
    this.writtenKeys = keep;
    if (this.statusEpoch === epoch) this.syncedEpoch = epoch;
  }

  private async setStatus(key: string, patch: Partial<InstanceStatus>): Promise<void> {
    const prev = this.lastStatus.get(key);
    if (!prev) return;
    const changedPhase = (patch.phase && patch.phase !== prev.phase) || (patch.reason && patch.reason !== prev.reason);
    const next = { ...prev, ...patch, since: changedPhase ? new Date(this.o.clock.now()).toISOString() : prev.since };
    this.lastStatus.set(key, next);
    await this.store.writeStatuses([next], []).catch(() => void this.statusEpoch++);
  }

  // --- apply ---

  private enqueue(key: string, fn: () => Promise<void>): void {
    this.inFlight.add(key);
    void this.queue.add(async () => {
      try {
        await fn();
      } finally {
        this.inFlight.delete(key);
        // In a burst (a converge of 100), the pass after each launch would
        // find nothing to do but list containers while the engine is busiest
        // creating them; one pass when the burst ends does it all, unless an
        // instance waits for what may just have started or stopped.
        if (this.inFlight.size === 0 || this.waitingOnDeps) this.trigger('action done');
      }
    });
  }

  private async applyRemove(a: Extract<Action, { kind: 'remove' }>): Promise<void> {
    this.log.info({ container: a.container.name, why: a.why }, 'removing container');
    try {
      await this.o.runtime.stopAndRemove(a.container);
      this.o.metrics.actions.inc({ kind: 'remove', result: 'ok' });
    } catch (e) {
      this.o.metrics.actions.inc({ kind: 'remove', result: 'error' });
      this.log.error({ container: a.container.name, err: describe(e) }, 'could not remove container');
    }
  }

  private async applyLaunch({ action: a, payloads, secrets }: Launch): Promise<void> {
    const d = a.desired;
    const now = this.o.clock.now();
    if (a.kind === 'replace' && a.why === 'not-running') {
      // A container of ours that stopped on its own: that is a failure for back-off.
      // A secret-bearing container's output can quote its secrets in any
      // shape (a URL, "pw x"): masking cannot be trusted there, so its
      // output stays in `docker logs` and out of status and logs.
      const secretive = d.spec.lockers.length > 0;
      const info = await this.o.runtime.crashInfo(a.old, secretive ? 0 : 5).catch(() => ({ exitCode: null, oom: false, tail: [] as string[] }));
      const why = info.oom ? 'was killed for running out of memory' : `exited with code ${info.exitCode ?? '?'}`;
      const tail = secretive ? `; its output is not shown here because the container holds secrets (see \`docker logs ${a.old.name}\`)` : info.tail.length ? `; last output: ${info.tail.join(' | ')}` : '';
      this.backoff.fail(a.key, now, 'CrashLoop', `container ${a.old.name} ${why}${tail}`, d.hash);
      this.log.warn({ instance: a.key, exitCode: info.exitCode, oom: info.oom }, 'container stopped on its own; recreating');
    }
    // Environment: lockers in listed order (later wins), then the explicit
    // environment over all of them, as compose and Kubernetes envFrom do.
    const env = new Map<string, string>();
    const secretValues: string[] = [];
    payloads.forEach((pl) => {
      for (const [k, v] of Object.entries(pl)) {
        env.set(k, v);
        secretValues.push(v);
      }
    });
    for (const [k, v] of d.spec.environment) {
      if (env.has(k) && payloads.some((pl) => k in pl)) this.log.warn({ instance: a.key, key: k }, 'environment value overrides a locker key of the same name');
      env.set(k, v);
    }
    const spec: LaunchSpec = {
      realm: d.realm, instance: d.name, service: d.service, variety: d.variety, profile: d.profile, specHash: d.hash, secrets, digest: specDigest(d.spec),
      image: d.spec.image, command: d.spec.command, entrypoint: d.spec.entrypoint, volumes: d.spec.volumes,
      networks: d.spec.networks, ports: d.spec.ports,
    };
    // Published ports cannot be held by two containers: then the old one stops first.
    const stopFirst = d.spec.ports.length > 0;
    const canonical = containerName(d.realm, d.name);
    const old = a.kind === 'replace' ? a.old : undefined;
    // Everything that can fail without touching the running container comes first.
    try {
      renderEnvFile([...env]);
      await this.o.runtime.ensureImage(d.spec.image);
    } catch (e) {
      await this.launchFailed(a, describe(e), isOzwError(e) ? e.code : 'OZW_LAUNCH_FAILED');
      return;
    }
    const parked = old && old.name === canonical ? `${canonical}--replaced-${old.id.slice(0, 12)}` : old?.name;
    let renamed = false;
    let stoppedOld = false;
    try {
      if (old && old.name === canonical) {
        // Start new, then stop old: the old container steps aside (renamed,
        // still running) so a failed launch can simply put it back.
        try {
          if (stopFirst && old.running) {
            await this.o.runtime.stop(old);
            stoppedOld = true;
          }
          await this.o.runtime.rename(old, parked!);
        } catch (e) {
          // Some engines refuse to rename a running container that was
          // restarted ("sandbox not found"); a stopped one they rename.
          this.log.warn({ container: old.name, err: describe(e) }, 'could not rename the running container; stopping it first');
          await this.o.runtime.stop(old);
          stoppedOld = stoppedOld || old.running;
          await this.o.runtime.rename(old, parked!);
        }
        renamed = true;
      } else if (old && stopFirst && old.running) {
        await this.o.runtime.stop(old);
        stoppedOld = true;
      }
      this.log.info({ instance: a.key, image: d.spec.image, lockers: d.spec.lockers, kind: a.kind }, 'launching');
      await this.o.runtime.ensureNetworks(d.spec.networks, d.realm);
      this.o.scrubber.add(secretValues);
      let id: string;
      try {
        id = await this.o.envDir.with([...env], (file) => this.o.runtime.run(spec, file, secretValues));
      } finally {
        this.o.scrubber.remove(secretValues);
      }
      await this.o.runtime.connect(id, d.spec.networks.slice(1));
      this.lockedReasons.delete(a.key);
      if (old) await this.o.runtime.stopAndRemove({ ...old, name: parked! });
      this.log.info({ instance: a.key, container: canonical, id: id.slice(0, 12) }, 'container started');
      this.o.metrics.actions.inc({ kind: a.kind, result: 'ok' });
      await this.setStatus(a.key, { phase: 'Running', reason: 'Running', message: `container ${canonical} is running`, containerId: id, lockers: [] });
    } catch (e) {
      const err = describe(e);
      // `docker run` can fail after creating the container (bad entrypoint):
      // remove that one so the name is free for the old one or the next try.
      await this.removeFailedLaunch(canonical, d.hash);
      if (old && (renamed || stoppedOld)) {
        // Put the previous container back the way it was.
        try {
          if (renamed) await this.o.runtime.rename({ ...old, name: parked! }, canonical);
          if (stoppedOld) await this.o.runtime.start(old);
        } catch (e2) {
          this.log.error({ instance: a.key, err: describe(e2) }, 'could not restore the previous container');
        }
      }
      await this.launchFailed(a, err, isOzwError(e) ? e.code : 'OZW_LAUNCH_FAILED');
    }
  }

  private async launchFailed(a: Launch['action'], errText: string, code: string): Promise<void> {
    const d = a.desired;
    this.o.metrics.actions.inc({ kind: a.kind, result: 'error' });
    // A container that is not ours holds the name: say so; never touch it.
    const conflict = /is already in use by container/.test(errText);
    const err = conflict
      ? `a container named ${containerName(d.realm, d.name)} exists that ozwald does not manage (no ozwald labels for provisioner ${this.o.provisioner}); remove or rename it`
      : errText;
    const reason = conflict ? 'NameConflict' : 'LaunchFailed';
    const b = this.backoff.fail(a.key, this.o.clock.now(), reason, err, d.hash);
    if (d.spec.lockers.length) {
      this.lockedReasons.set(a.key, { reason: 'LaunchFailed', message: `${err}; the token was used up — unlock again to retry`, hash: d.hash });
    }
    this.log.error({ code, instance: a.key, err, retryAt: new Date(b.until).toISOString() }, 'launch failed');
    await this.setStatus(a.key, { phase: 'BackOff', reason, message: `${err}; next try at ${new Date(b.until).toISOString()}` });
  }

  private async removeFailedLaunch(name: string, hash: string): Promise<void> {
    try {
      const leftover = (await this.o.runtime.list()).find((c) => c.name === name && c.specHash === hash);
      if (leftover) await this.o.runtime.stopAndRemove(leftover);
    } catch (e) {
      this.log.warn({ container: name, err: describe(e) }, 'could not remove the container of a failed launch');
    }
  }

  // --- lifecycle ---

  async stop(graceMs = 30_000): Promise<void> {
    this.stopped = true;
    this.renewTimer?.cancel();
    this.abort.abort();
    this.reloadTimer?.cancel();
    this.resyncTimer?.cancel();
    for (const t of this.wakeTimers.splice(0)) t.cancel();
    await this.watcher?.close();
    await Promise.race([this.queue.onIdle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    if (this.leader) {
      await this.o.envDir.sweep().catch(() => 0);
      await this.writeController().catch(() => {});
      await this.lease.release().catch(() => {});
      this.leader = false;
    }
    if (this.sub) this.sub.disconnect();
    this.o.redis.off('close', this.onRedisClose);
    this.o.redis.off('ready', this.onRedisReady);
  }
}
