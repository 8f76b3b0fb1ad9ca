import { join } from 'node:path';
import { connectRedis, ensureConnected, Store } from '../state/store.js';
import type { Redis } from 'ioredis';
import { SAFE_NAME } from '../config/schema.js';
import { OzwError } from '../errors.js';

export interface Globals {
  redis: string;
  provisioner: string;
  manifests: string;
}

export const GLOBAL_OPTIONS = {
  redis: { type: 'string' },
  provisioner: { type: 'string' },
  manifests: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function globalsFrom(v: { redis?: string; provisioner?: string; manifests?: string }, env = process.env): Globals {
  const provisioner = v.provisioner ?? env.OZWALD_PROVISIONER ?? 'local';
  // It names Redis keys, container labels and the env-file directory: a
  // "../x" or "a b" would reach outside them.
  if (!SAFE_NAME.test(provisioner)) {
    throw new OzwError('OZW_USAGE', `the provisioner name ${JSON.stringify(provisioner.slice(0, 80))} (--provisioner or OZWALD_PROVISIONER) is not a valid name`, [],
      'use letters, digits, \'_\', \'.\' and \'-\', starting with a letter or digit, at most 63 characters (e.g. gpu-host-1)');
  }
  return {
    redis: v.redis ?? env.OZWALD_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    provisioner,
    manifests: v.manifests ?? env.OZWALD_MANIFESTS ?? './manifests',
  };
}

/** A connected store for one CLI command; close() when done. */
export async function openStore(g: Globals): Promise<{ store: Store; redis: Redis; close(): void }> {
  const redis = connectRedis(g.redis);
  await ensureConnected(redis, g.redis);
  return { store: new Store(redis, g.provisioner), redis, close: () => redis.disconnect() };
}

export function runtimeDir(base: string, provisioner: string): string {
  return join(base, provisioner);
}
