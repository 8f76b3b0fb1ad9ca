// The desired set: the manifests' persistent services plus the dynamic set
// from Redis, resolved. Pure.
import type { Model } from '../config/model.js';
import { instanceKey, manifestRequests, partDeps, resolveInstance, type InstanceRequest, type ResolvedInstance } from '../config/resolve.js';
import { describe } from '../errors.js';
import type { DynamicEntry } from '../state/store.js';
import type { PlanInput } from './planner.js';

export function desiredSet(model: Model, dynamic: DynamicEntry[]): { desired: ResolvedInstance[]; invalid: NonNullable<PlanInput['invalid']> } {
  const reqs: InstanceRequest[] = manifestRequests(model);
  const taken = new Set(reqs.map((r) => instanceKey(r.realm, r.name)));
  for (const e of dynamic) {
    if (taken.has(instanceKey(e.realm, e.name))) continue; // the manifests win; `services update` refuses such names
    reqs.push({ ...e, source: 'dynamic' });
  }
  const desired: ResolvedInstance[] = [];
  const invalid: NonNullable<PlanInput['invalid']> = [];
  const hostPorts = new Map<string, string>();
  for (const r of reqs) {
    try {
      const d = resolveInstance(model, r);
      // Two instances cannot publish the same host port; the first one keeps it.
      const clash = d.spec.ports.map((p) => p.split(':')[0]!).find((hp) => hostPorts.has(hp));
      if (clash) throw new Error(`host port ${clash} is already published by ${hostPorts.get(clash)}`);
      for (const p of d.spec.ports) hostPorts.set(p.split(':')[0]!, d.key);
      desired.push(d);
    } catch (e) {
      invalid.push({ key: instanceKey(r.realm, r.name), realm: r.realm, name: r.name, service: r.service, variety: r.variety, profile: r.profile, message: describe(e) });
    }
  }
  return { desired, invalid };
}

/** Keys set by more than one source for an instance, in the order they are overridden (for plan warnings). */
export function envCollisions(d: ResolvedInstance, keyNames: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  const from = new Map<string, string>();
  for (const l of d.spec.lockers) {
    for (const k of keyNames.get(`${d.realm}:${l}`) ?? []) {
      const prev = from.get(k);
      if (prev) out.push(`${d.key}: key ${k} of locker ${l} overrides locker ${prev}`);
      from.set(k, l);
    }
  }
  for (const [k] of d.spec.environment) {
    const prev = from.get(k);
    if (prev) out.push(`${d.key}: environment ${k} overrides the key of the same name in locker ${prev}`);
  }
  return out;
}

/** "realm/service" → the services its parts depend on (any variety or profile). */
export function serviceDependencies(model: Model): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const realm of model.realms.values()) {
    for (const svc of realm.services.values()) {
      const deps = new Set<string>();
      for (const { part } of svc.parts) for (const d of partDeps(part) ?? []) deps.add(d);
      out.set(`${realm.name}/${svc.def.name}`, [...deps]);
    }
  }
  return out;
}
