import { join } from 'node:path';
import { connectRedis, ensureConnected, Store } from '../state/store.js';
import type { Redis } from 'ioredis';

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
  return {
    redis: v.redis ?? env.OZWALD_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    provisioner: v.provisioner ?? env.OZWALD_PROVISIONER ?? 'local',
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
