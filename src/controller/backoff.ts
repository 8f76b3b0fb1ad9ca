// Per-instance exponential back-off, CrashLoopBackOff style: 10 s doubling to
// 5 min; the count resets once the instance has run 10 min without failing.
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
export const BACKOFF_RESET_MS = 600_000;

export interface BackoffEntry {
  failures: number;
  lastFailureAt: number;
  until: number;
  reason: string;
  message: string;
  /** The spec that failed: a changed spec is tried at once (a fixed manifest should not wait). */
  specHash?: string;
}

export function backoffDelay(failures: number, jitter = 0): number {
  const d = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS);
  return Math.round(d * (1 + jitter));
}

export class Backoff {
  private readonly m = new Map<string, BackoffEntry>();
  constructor(private readonly random: () => number = Math.random) {}

  fail(key: string, now: number, reason: string, message: string, specHash?: string): BackoffEntry {
    const prev = this.m.get(key);
    const failures = (prev?.failures ?? 0) + 1;
    // Up to +10% jitter so instances that failed together do not retry in lockstep.
    const e = { failures, lastFailureAt: now, until: now + backoffDelay(failures, this.random() * 0.1), reason, message, specHash };
    this.m.set(key, e);
    return e;
  }

  /** Called when the instance is seen running: forget failures after a stable period. */
  healthy(key: string, now: number): void {
    const e = this.m.get(key);
    if (e && now - e.lastFailureAt >= BACKOFF_RESET_MS) this.m.delete(key);
  }

  forget(key: string): void {
    this.m.delete(key);
  }

  view(): ReadonlyMap<string, BackoffEntry> {
    return this.m;
  }
}
