// The planner: desired state + observed state → actions and statuses. Pure:
// no I/O, no clock (time comes in as `now`), so it is table-tested.
import type { ResolvedInstance } from '../config/resolve.js';
import type { ObservedContainer } from '../runtime/docker.js';
import { containerName } from '../runtime/labels.js';
import type { InstanceStatus, Phase } from '../state/status.js';

export type Action =
  | { kind: 'create'; key: string; desired: ResolvedInstance; lockers: string[] }
  | { kind: 'replace'; key: string; desired: ResolvedInstance; old: ObservedContainer; lockers: string[]; why: 'spec-changed' | 'not-running' | 'secrets-rotated' }
  | { kind: 'remove'; key: string; container: ObservedContainer; why: 'not-desired' | 'duplicate' };

export interface PlanInput {
  provisioner: string;
  desired: ResolvedInstance[];
  /** Desired instances that could not be resolved (dynamic entries naming what does not exist). */
  invalid?: { key: string; realm: string; name: string; service: string; variety: string | null; profile: string | null; message: string }[];
  observed: ObservedContainer[];
  /** "realm:locker" ids with an unlock key waiting in Redis. */
  unlockKeys: ReadonlySet<string>;
  /** "realm:locker" ids with a sealed blob in the vault. */
  vaultKeys: ReadonlySet<string>;
  /** "realm:locker" → version of the sealed blob, to spot containers started with older secrets. */
  vaultVersions?: ReadonlyMap<string, string>;
  /** "realm:locker" ids whose blob is a legacy (Python Ozwald, Fernet) envelope. */
  legacyLockers?: ReadonlySet<string>;
  /** Instances with an action in flight: left alone this pass. */
  inFlight: ReadonlySet<string>;
  /** Instances in back-off: not retried before `until` (ms). */
  backoff: ReadonlyMap<string, { until: number; reason: string; message: string; specHash?: string }>;
  /** Lockers whose last token was wrong, per instance key, kept so status can say why it is still Locked. */
  lockedReasons?: ReadonlyMap<string, { reason: string; message: string }>;
  now: number;
  /** "realm/service" → services it depends on, from the manifests: dependents stop before what they depend on. */
  serviceDeps?: ReadonlyMap<string, string[]>;
  /** Instances whose last recorded phase was Running (to explain a locker service that lost its container). */
  wasRunning?: ReadonlySet<string>;
}

export type PlannedStatus = Omit<InstanceStatus, 'since'>;

/** The label value recording which sealed version of each locker a container got; null when unknown. */
export function secretsVersion(realm: string, lockers: string[], versions: ReadonlyMap<string, string> | undefined): string | null {
  if (!versions || lockers.length === 0) return lockers.length === 0 ? '' : null;
  const parts: string[] = [];
  for (const l of lockers) {
    const v = versions.get(`${realm}:${l}`);
    if (v === undefined) return null;
    parts.push(`${l}=${v}`);
  }
  return parts.join(',');
}

export interface Plan {
  actions: Action[];
  statuses: PlannedStatus[];
}

export function plan(input: PlanInput): Plan {
  const actions: Action[] = [];
  const statuses: PlannedStatus[] = [];
  const byKey = new Map<string, ObservedContainer[]>();
  for (const c of input.observed) {
    if (c.provisioner !== input.provisioner) continue; // never ours to touch
    const k = `${c.realm}/${c.instance}`;
    const list = byKey.get(k);
    if (list) list.push(c);
    else byKey.set(k, [c]);
  }
  const desiredKeys = new Set<string>();
  // Instances up and current: what a dependent may start after.
  const upToDate = new Set<string>();
  for (const d of input.desired) {
    const c = (byKey.get(d.key) ?? []).find((x) => x.running && x.specHash === d.hash);
    if (c) upToDate.add(d.key);
  }

  for (const d of input.desired) {
    desiredKeys.add(d.key);
    const found = byKey.get(d.key) ?? [];
    const canonical = containerName(d.realm, d.name);
    // The one to keep: our canonical name first, then a running one.
    const current = found.find((c) => c.name === canonical) ?? found.find((c) => c.running) ?? found[0];
    const extras = found.filter((c) => c !== current);
    const base = {
      realm: d.realm, instance: d.name, service: d.service, variety: d.variety, profile: d.profile, source: d.source,
      specHash: d.hash, containerId: current?.id ?? null, lockers: [] as string[],
    };
    const status = (phase: Phase, reason: string, message: string, lockers: string[] = []) =>
      statuses.push({ ...base, phase, reason, message, lockers });

    if (input.inFlight.has(d.key)) {
      status('Starting', 'InProgress', 'a launch or replacement is in progress');
      continue;
    }
    for (const x of extras) actions.push({ kind: 'remove', key: d.key, container: x, why: 'duplicate' });

    if (d.type !== 'container') {
      status('Pending', 'NotAContainer', `service type "${d.type}" is not run by this provisioner`);
      continue;
    }
    const isCurrent = current !== undefined && current.specHash === d.hash;
    if (isCurrent && current.running) {
      const want = secretsVersion(d.realm, d.spec.lockers, input.vaultVersions);
      if (want && current.secrets !== undefined && current.secrets !== want) {
        // Sealed again since this container started: refresh on the next unlock.
        const stale = d.spec.lockers.filter((l) => !current.secrets!.split(',').includes(`${l}=${input.vaultVersions!.get(`${d.realm}:${l}`)}`));
        const waitingFor = d.spec.lockers.filter((l) => !input.unlockKeys.has(`${d.realm}:${l}`));
        if (waitingFor.length === 0) {
          actions.push({ kind: 'replace', key: d.key, desired: d, old: current, lockers: d.spec.lockers, why: 'secrets-rotated' });
          status('Pending', 'SecretsRotated', `locker(s) ${stale.join(', ')} were sealed again; the container will be replaced`);
        } else {
          const msg = `running with secrets sealed before the last change of ${stale.map((l) => `vault:${d.realm}:${l}`).join(', ')}; unlock to refresh`;
          // The last unlock failed (wrong token): still running, and say why it was not refreshed.
          const prior = input.lockedReasons?.get(d.key);
          if (prior) status('Running', prior.reason, `${msg}; the last unlock did not refresh it: ${prior.message}`, waitingFor);
          else status('Running', 'StaleSecrets', msg, waitingFor);
        }
        continue;
      }
      const legacy = d.spec.lockers.filter((l) => input.legacyLockers?.has(`${d.realm}:${l}`));
      const note = legacy.length ? ` (legacy envelope: ${legacy.map((l) => `vault:${d.realm}:${l}`).join(', ')}; run \`ozwald secrets migrate\`)` : '';
      status('Running', 'Running', `container ${current.name} is running${note}`);
      continue;
    }
    // depends-on: start only after every instance of each service it needs runs.
    const waitingFor: string[] = [];
    for (const dep of d.dependsOn ?? []) {
      const providers = input.desired.filter((x) => x.realm === d.realm && x.service === dep);
      if (providers.length === 0) waitingFor.push(`service ${dep} (no instance of it is desired in realm ${d.realm})`);
      for (const p of providers) if (!upToDate.has(p.key)) waitingFor.push(p.key);
    }
    if (waitingFor.length) {
      status('Pending', 'WaitingForDependency', `waiting for ${waitingFor.join(', ')} to be Running${current?.running ? ' (the running container keeps its previous spec until then)' : ''}`);
      continue;
    }
    const bo = input.backoff.get(d.key);
    if (bo && input.now < bo.until && (bo.specHash === undefined || bo.specHash === d.hash)) {
      status('BackOff', bo.reason, `${bo.message}; next try at ${new Date(bo.until).toISOString()}`);
      continue;
    }
    const keep = current?.running ? ` (the running container keeps its previous spec until then)` : '';
    const missingVault = d.spec.lockers.filter((l) => !input.vaultKeys.has(`${d.realm}:${l}`));
    if (missingVault.length) {
      status('Locked', 'LockerEmpty', `nothing sealed at ${missingVault.map((l) => `vault:${d.realm}:${l}`).join(', ')}; run \`ozwald secrets set\`${keep}`, missingVault);
      continue;
    }
    const waiting = d.spec.lockers.filter((l) => !input.unlockKeys.has(`${d.realm}:${l}`));
    if (waiting.length) {
      const prior = input.lockedReasons?.get(d.key);
      // An exited container of ours ran (a launch that fails removes its
      // container); a removed one ran if we last saw it running.
      const lost = current && !current.running
        ? `its container is ${current.state} and tokens are used up at start; `
        : !current && input.wasRunning?.has(d.key) ? 'its container was removed and tokens are used up at start; ' : '';
      if (prior) status('Locked', prior.reason, `${prior.message}${keep}`, waiting);
      else status('Locked', 'WaitingForUnlock', `${lost}waiting for \`ozwald unlock\` of ${waiting.map((l) => `${d.realm}:${l}`).join(', ')}${keep}`, waiting);
      continue;
    }
    if (current === undefined) {
      actions.push({ kind: 'create', key: d.key, desired: d, lockers: d.spec.lockers });
      status('Pending', 'Creating', 'the container will be created');
    } else {
      const why = isCurrent ? 'not-running' : 'spec-changed';
      actions.push({ kind: 'replace', key: d.key, desired: d, old: current, lockers: d.spec.lockers, why });
      status('Pending', why === 'spec-changed' ? 'SpecChanged' : 'NotRunning',
        why === 'spec-changed' ? 'the spec changed; the container will be replaced' : `container ${current.name} is ${current.state}; it will be recreated`);
    }
  }

  for (const inv of input.invalid ?? []) {
    desiredKeys.add(inv.key);
    const cur = byKey.get(inv.key)?.[0];
    statuses.push({
      realm: inv.realm, instance: inv.name, service: inv.service, variety: inv.variety, profile: inv.profile, source: 'dynamic',
      specHash: '', containerId: cur?.id ?? null, lockers: [], phase: 'Failed', reason: 'InvalidSpec', message: inv.message,
    });
  }

  // Removals: a container whose service another container being removed
  // depends on waits for that one to go first ("stop before it").
  const removing: ObservedContainer[] = [];
  for (const [k, list] of byKey) {
    if (desiredKeys.has(k) || input.inFlight.has(k)) continue;
    removing.push(...list);
  }
  for (const c of removing) {
    const neededBy = removing.filter((o) => o !== c && o.realm === c.realm && c.service !== undefined &&
      (input.serviceDeps?.get(`${o.realm}/${o.service}`) ?? []).includes(c.service));
    if (neededBy.length) continue;
    actions.push({ kind: 'remove', key: `${c.realm}/${c.instance}`, container: c, why: 'not-desired' });
  }
  return { actions, statuses };
}
