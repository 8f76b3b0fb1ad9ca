// The dynamic desired set: what `services update` and the HTTP API switch on
// and off. Checked against the manifests before anything is written; tokens
// that come with an update become unlock keys, never part of the set.
import type { Model } from '../config/model.js';
import { instanceKey, manifestRequests, resolveInstance } from '../config/resolve.js';
import { describe, OzwError } from '../errors.js';
import type { DesiredSet, DynamicEntry, Store } from '../state/store.js';
import { UNLOCK_TTL_DEFAULT } from '../state/keys.js';
import { tokenProblem } from '../vault/token.js';
import { desiredSet } from './desired.js';

/** Every problem with a proposed dynamic set, or [] when it can be written. */
export function checkDynamic(model: Model, entries: DynamicEntry[]): string[] {
  const problems: string[] = [];
  const manifest = new Set(manifestRequests(model).map((r) => instanceKey(r.realm, r.name)));
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const key = instanceKey(e.realm, e.name);
    const where = `services[${i}] (${e.realm}:${e.name})`;
    if (seen.has(key)) problems.push(`${where}: the instance name is listed twice`);
    seen.add(key);
    if (manifest.has(key)) problems.push(`${where}: the manifests already run an instance of that name as a persistent service`);
    try {
      resolveInstance(model, { ...e, source: 'dynamic' });
    } catch (err) {
      problems.push(`${where}: ${describe(err)}`);
    }
  });
  if (problems.length === 0) {
    for (const inv of desiredSet(model, entries).invalid) problems.push(`${inv.realm}:${inv.name}: ${inv.message}`);
  }
  return problems;
}

/**
 * Validates, then delivers tokens as unlock keys (realm of each entry that
 * uses the locker), then replaces the set. Tokens go first so the controller,
 * woken by the new set, finds them.
 */
export async function updateDynamic(
  store: Store, model: Model, entries: DynamicEntry[],
  opts: { tokens?: Map<string, string>; expect?: number; now: number; ttl?: number },
): Promise<{ set: DesiredSet; unlocked: string[] }> {
  const problems = checkDynamic(model, entries);
  const unlocked: string[] = [];
  const writes: [string, string, string][] = [];
  for (const [locker, token] of opts.tokens ?? []) {
    const bad = tokenProblem(token);
    if (bad) problems.push(`token for locker ${locker}: ${bad}`);
    const realms = new Set<string>();
    for (const e of entries) {
      const inst = (() => {
        try {
          return resolveInstance(model, { ...e, source: 'dynamic' });
        } catch {
          return undefined;
        }
      })();
      if (inst?.spec.lockers.includes(locker)) realms.add(e.realm);
    }
    if (realms.size === 0) problems.push(`token for locker ${locker}: no listed service uses that locker`);
    for (const realm of realms) writes.push([realm, locker, token]);
  }
  if (problems.length) {
    const clash = problems.some((p) => p.includes('the manifests already run an instance of that name'));
    throw new OzwError('OZW_UNKNOWN_REFERENCE', problems[0]!, problems,
      clash ? 'give the instance another name: in NAME[service][variety][profile] the first word names the instance, e.g. demo:chat2[assistant]' : undefined);
  }
  for (const [realm, locker, token] of writes) {
    await store.setUnlock(realm, locker, token, opts.ttl ?? UNLOCK_TTL_DEFAULT, opts.now);
    unlocked.push(`${realm}:${locker}`);
  }
  const set = await store.replaceDesired(entries, opts.expect);
  return { set, unlocked };
}
