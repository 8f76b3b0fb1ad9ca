// Everything the controller, CLI and API keep in Redis goes through here.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { OzwError } from '../errors.js';
import { isFernetToken } from '../vault/fernet.js';
import { inspect } from '../vault/envelope.js';
import { keys, unlockKey, vaultKey, UNLOCK_TTL_DEFAULT } from './keys.js';
import type { ControllerStatus, InstanceStatus } from './status.js';

// Takes all the unlock keys or none, with GETDEL inside one script: a service
// that needs several lockers must never strand one token by taking it alone.
// Returns value and remaining ms of each, so a token that other instances
// still wait for can be put back with its original expiry.
const takeAll = (get: string) => `
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 0 then return false end
end
local out = {}
for i, k in ipairs(KEYS) do
  out[2 * i - 1] = redis.call('PTTL', k)
  ${get}
end
return out
`;
const TAKE_ALL = takeAll(`out[2 * i] = redis.call('GETDEL', k)`);
// Redis before 6.2 has no GETDEL; GET then DEL inside the script is just as atomic.
const TAKE_ALL_OLD = takeAll(`out[2 * i] = redis.call('GET', k); redis.call('DEL', k)`);

export interface TakenToken { token: string; expiresAt: number | null }

/**
 * forever: reconnect without end (the controller rides out restarts).
 * failFast with forever: reconnect, but a command fails at once while Redis
 * is away instead of waiting in a queue (the API answers 503).
 */
export function connectRedis(url: string, opts: { forever?: boolean; failFast?: boolean } = {}): Redis {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    /* reported below */
  }
  if (!parsed || !['redis:', 'rediss:'].includes(parsed.protocol) || !parsed.hostname) {
    throw new OzwError('OZW_USAGE', `the Redis URL ${parsed ? redactUrl(url) : '(unparseable)'} is not of the form redis://[:password@]host[:port][/db] (or rediss:// for TLS)`);
  }
  // ioredis would quietly use database 0 for "/abc", "/-1" or "?db=abc".
  const dbParam = parsed.searchParams.get('db');
  if (!/^\/?(\d{1,5})?$/.test(parsed.pathname) || (dbParam !== null && !/^\d{1,5}$/.test(dbParam))) {
    throw new OzwError('OZW_USAGE', `the Redis URL ${redactUrl(url)} names database "${dbParam ?? parsed.pathname.slice(1)}", which is not a number`, [], 'end the URL with a database number, e.g. redis://127.0.0.1:6379/0');
  }
  const r = new Redis(url, {
    lazyConnect: true,
    enableReadyCheck: true,
    // The controller rides out Redis restarts; a CLI command fails fast.
    maxRetriesPerRequest: opts.forever && !opts.failFast ? null : 1,
    ...(opts.failFast ? { enableOfflineQueue: false } : {}),
    retryStrategy: opts.forever ? (n) => Math.min(200 * 2 ** Math.min(n, 6), 5000) : () => null,
    connectTimeout: 3000,
    // A Redis that accepts connections but does not answer (stopped, swapping)
    // must not hang a CLI command or an API request; the controller waits instead.
    ...(opts.forever && !opts.failFast ? {} : { commandTimeout: opts.failFast ? 3000 : 5000 }),
    // A command whose reply was lost is never sent again: a resent GETDEL of
    // an unlock key could take a token twice or report it missing.
    autoResendUnfulfilledCommands: false,
  });
  r.on('error', () => {}); // reported where commands fail; no unhandled 'error' events
  return r;
}

export async function ensureConnected(r: Redis, url: string): Promise<void> {
  if (r.status !== 'ready') {
    let lastError: Error | undefined;
    const keep = (e: Error) => void (lastError = e);
    r.on('error', keep);
    try {
      if (r.status === 'wait') await r.connect();
      await r.ping();
    } catch (e) {
      // "Connection is closed" says little; the socket's own error says why (refused, NOAUTH, WRONGPASS…).
      const why = lastError && lastError.message !== (e as Error).message ? `${lastError.message}` : (e as Error).message;
      throw new OzwError('OZW_REDIS_UNAVAILABLE', `cannot reach Redis at ${redactUrl(url)}: ${why}`);
    } finally {
      r.off('error', keep);
    }
  }
  // A database the server does not have: ioredis reports the failed SELECT
  // as an event and goes on in database 0, among other people's keys.
  const db = Number(r.options.db ?? 0);
  if (db > 0) {
    await r.select(db).catch((e: Error) => {
      throw new OzwError('OZW_USAGE', `the Redis URL ${redactUrl(url)} selects database ${db}, which this server refuses (${e.message})`, [], 'use a database number the server has (0-15 unless its databases setting says more)');
    });
  }
}

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString().replace('password=%2A%2A%2A', 'password=***');
  } catch {
    return '(unparseable Redis URL)';
  }
}

export class Store {
  readonly k: ReturnType<typeof keys>;
  private oldRedis = false;
  constructor(readonly redis: Redis, readonly provisioner: string) {
    this.k = keys(provisioner);
  }

  // --- vault ---
  getVault(realm: string, locker: string): Promise<string | null> {
    return this.redis.get(vaultKey(realm, locker));
  }
  async setVault(realm: string, locker: string, blob: string): Promise<void> {
    await this.redis.set(vaultKey(realm, locker), blob);
  }
  async delVault(realm: string, locker: string): Promise<boolean> {
    return (await this.redis.del(vaultKey(realm, locker))) > 0;
  }
  async listVault(): Promise<{ realm: string; locker: string; blob: string }[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', 'vault:*', 'COUNT', 500);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    found.sort();
    if (found.length === 0) return [];
    const blobs = await this.redis.mget(...found);
    const out: { realm: string; locker: string; blob: string }[] = [];
    found.forEach((key, i) => {
      const [, realm, locker] = key.split(':');
      const blob = blobs[i];
      if (realm && locker && typeof blob === 'string') out.push({ realm, locker, blob });
    });
    return out;
  }

  // --- unlock ---
  /** Writes the token with an absolute expiry, so a retried write cannot extend it. */
  async setUnlock(realm: string, locker: string, token: string, ttlSeconds: number, nowMs: number): Promise<void> {
    const exat = Math.floor(nowMs / 1000) + ttlSeconds;
    await this.redis.set(unlockKey(realm, locker), token, 'EXAT', exat);
    await this.wake(`unlock ${realm}:${locker}`);
  }

  /**
   * Takes the unlock keys of these lockers, all or none. Never retried: a
   * lost reply means the tokens are gone and the user unlocks again.
   */
  async takeTokens(realm: string, lockers: string[], nowMs: number): Promise<Map<string, TakenToken> | null> {
    if (lockers.length === 0) return new Map();
    const names = lockers.map((l) => unlockKey(realm, l));
    let reply: (string | number)[] | null;
    try {
      reply = (await this.redis.eval(this.oldRedis ? TAKE_ALL_OLD : TAKE_ALL, names.length, ...names)) as (string | number)[] | null;
    } catch (e) {
      // Only an unknown-command error is retried: the script stopped before deleting anything.
      if (this.oldRedis || !/unknown command|Unknown Redis command/i.test((e as Error).message)) throw e;
      this.oldRedis = true;
      reply = (await this.redis.eval(TAKE_ALL_OLD, names.length, ...names)) as (string | number)[] | null;
    }
    if (!reply) return null;
    const out = new Map<string, TakenToken>();
    lockers.forEach((l, i) => {
      const ms = Number(reply[2 * i]);
      out.set(l, { token: String(reply[2 * i + 1]), expiresAt: ms > 0 ? nowMs + ms : null });
    });
    return out;
  }

  /** Puts a token back for instances that still wait for its locker; never over a newer unlock. */
  async putBackToken(realm: string, locker: string, t: TakenToken, nowMs: number): Promise<void> {
    const key = unlockKey(realm, locker);
    // A key written without a TTL (by hand, another tool) goes back with the
    // default one: a token must never stay in Redis for good.
    if (t.expiresAt === null) await this.redis.set(key, t.token, 'PX', UNLOCK_TTL_DEFAULT * 1000, 'NX');
    else if (t.expiresAt - nowMs > 50) await this.redis.set(key, t.token, 'PXAT', t.expiresAt, 'NX');
  }

  /**
   * One round trip: which of these realm/locker pairs have an unlock key, and
   * the version (a short hash) of each sealed blob.
   */
  async lockerPresence(pairs: { realm: string; locker: string }[]): Promise<{ unlock: Set<string>; vault: Set<string>; versions: Map<string, string>; legacy: Set<string>; keyNames: Map<string, string[]> }> {
    const unlock = new Set<string>();
    const vault = new Set<string>();
    const versions = new Map<string, string>();
    const legacy = new Set<string>();
    const keyNames = new Map<string, string[]>();
    if (pairs.length === 0) return { unlock, vault, versions, legacy, keyNames };
    const p = this.redis.pipeline();
    for (const { realm, locker } of pairs) {
      p.exists(unlockKey(realm, locker));
      p.get(vaultKey(realm, locker));
    }
    const res = (await p.exec()) ?? [];
    pairs.forEach(({ realm, locker }, i) => {
      const id = `${realm}:${locker}`;
      const u = res[2 * i];
      const v = res[2 * i + 1];
      if (u && !u[0] && u[1] === 1) unlock.add(id);
      if (v && !v[0] && typeof v[1] === 'string') {
        vault.add(id);
        versions.set(id, blobVersion(v[1]));
        if (isFernetToken(v[1])) legacy.add(id);
        else {
          try {
            const names = inspect(v[1]).keys;
            if (names) keyNames.set(id, names);
          } catch {
            /* unreadable blobs are reported when opened */
          }
        }
      }
    });
    return { unlock, vault, versions, legacy, keyNames };
  }

  // --- wake-ups ---
  async wake(why: string): Promise<void> {
    await this.redis.publish(this.k.wake, why);
  }

  // --- status ---
  async writeStatuses(set: InstanceStatus[], remove: string[]): Promise<void> {
    if (set.length === 0 && remove.length === 0) return;
    const p = this.redis.pipeline();
    if (set.length) p.hset(this.k.status, Object.fromEntries(set.map((s) => [`${s.realm}/${s.instance}`, JSON.stringify(s)])));
    if (remove.length) p.hdel(this.k.status, ...remove);
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
  }
  async readStatuses(): Promise<InstanceStatus[]> {
    const all = await this.redis.hgetall(this.k.status);
    return Object.keys(all).sort().map((k) => JSON.parse(all[k]!) as InstanceStatus);
  }
  async writeController(s: ControllerStatus): Promise<void> {
    await this.redis.set(this.k.controller, JSON.stringify(s));
  }
  async readController(): Promise<ControllerStatus | null> {
    const v = await this.redis.get(this.k.controller);
    return v ? (JSON.parse(v) as ControllerStatus) : null;
  }

  // --- dynamic desired set ---
  async readDesired(): Promise<DesiredSet> {
    const v = await this.redis.get(this.k.desired);
    if (!v) return { generation: 0, services: [] };
    return JSON.parse(v) as DesiredSet;
  }

  /**
   * Replaces the dynamic set atomically (WATCH/MULTI) and bumps its
   * generation. With `expect`, fails with a conflict unless the stored
   * generation is that one (compare-and-set); without, a concurrent write is
   * retried on the new generation, so no write is lost or half-applied.
   */
  async replaceDesired(services: DynamicEntry[], expect?: number): Promise<DesiredSet> {
    for (let attempt = 0; attempt < 10; attempt++) {
      // WATCH holds per connection: a connection of its own, so concurrent
      // updates in one process cannot share (and clear) each other's watch.
      const conn = this.redis.duplicate();
      conn.on('error', () => {});
      try {
        if (conn.status === 'wait') await conn.connect();
        await conn.watch(this.k.desired);
        const raw = await conn.get(this.k.desired);
        const current = raw ? (JSON.parse(raw) as DesiredSet) : { generation: 0, services: [] };
        if (expect !== undefined && current.generation !== expect) {
          throw new OzwError('OZW_CONFLICT', `the dynamic set is at generation ${current.generation}, not ${expect}; read it again and retry`);
        }
        const next: DesiredSet = { generation: current.generation + 1, services };
        const done = await conn.multi().set(this.k.desired, JSON.stringify(next)).publish(this.k.wake, 'desired').exec();
        if (done !== null) return next;
      } finally {
        conn.disconnect();
      }
    }
    throw new OzwError('OZW_CONFLICT', 'the dynamic set kept changing under this update; try again');
  }
}

export interface DesiredSet { generation: number; services: DynamicEntry[] }

/** A short, stable fingerprint of a sealed blob: changes whenever the locker is sealed again. */
export function blobVersion(blob: string): string {
  return createHash('sha256').update(blob).digest('hex').slice(0, 12);
}

export interface DynamicEntry { realm: string; name: string; service: string; variety: string | null; profile: string | null }
