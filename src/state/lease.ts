// One active controller per provisioner: a lease in Redis, as Kubernetes
// leader election does it. The holder renews every RENEW_MS; a standby tries
// every RETRY_MS and takes over once the lease has lapsed (TTL_MS).
import type { Redis } from 'ioredis';

export const LEASE_TTL_MS = 15_000;
export const LEASE_RENEW_MS = 5_000;
export const LEASE_RETRY_MS = 2_000;

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class Lease {
  constructor(private readonly redis: Redis, readonly key: string, readonly holder: string, private readonly ttlMs = LEASE_TTL_MS) {}

  /** Takes the lease if nobody holds it. */
  async tryAcquire(): Promise<boolean> {
    return (await this.redis.set(this.key, this.holder, 'PX', this.ttlMs, 'NX')) === 'OK';
  }

  /** Extends the lease if we still hold it; false when someone else does. */
  async renew(): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key, this.holder, this.ttlMs)) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.holder);
  }

  holderNow(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
