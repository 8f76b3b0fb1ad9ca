// Resolution: a service definition plus a variety and a profile → the spec of
// one container. Pure.
import { createHash } from 'node:crypto';
import { OzwError } from '../errors.js';
import { resolveVolume, type Model, type RealmModel, type ServiceModel } from './model.js';
import type { OverrideT } from './schema.js';
import { listOf } from './suggest.js';
import { splitWords } from './words.js';

export interface InstanceRequest {
  realm: string;
  name: string;
  service: string;
  variety: string | null;
  profile: string | null;
  /** Where the request came from: the manifests, or the dynamic set in Redis. */
  source: 'manifest' | 'dynamic';
}

export interface ContainerSpec {
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  /** Explicit environment, in merge order (base, variety, profile; later wins). */
  environment: [string, string][];
  /** Lockers in order: base, variety, profile; duplicates dropped. */
  lockers: string[];
  /** `docker run --volume` arguments, merged by container path. */
  volumes: string[];
  /** Docker network names (oznet--<realm>--<name>), the first given at run, the rest connected after. */
  networks: string[];
  /** Published ports "hostPort:containerPort", from portals bridging to this service's connector. */
  ports: string[];
}

export interface ResolvedInstance extends InstanceRequest {
  key: string;
  type: string;
  spec: ContainerSpec;
  hash: string;
  /** Services (same realm) whose instances must be Running before this one starts. Not in the hash: order only. */
  dependsOn: string[];
}

/** depends-on / depends_on of one part (both spellings accepted). */
export function partDeps(part: OverrideT): string[] | undefined {
  return part['depends-on'] ?? part.depends_on;
}

export const instanceKey = (realm: string, name: string) => `${realm}/${name}`;

function toArgv(v: string | string[] | undefined): string[] | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v : splitWords(v);
}

export const networkName = (realm: string, name: string) => `oznet--${realm}--${name}`;

export function resolveService(model: Model, realm: RealmModel, svc: ServiceModel, variety: string | null, profile: string | null): ContainerSpec & { type: string } {
  const base = svc.def;
  const vr: OverrideT = variety === null ? {} : svc.varieties.get(variety) ?? {};
  const pr: OverrideT = profile === null ? {} : svc.profiles.get(profile) ?? {};
  const layers = [base, vr, pr];
  const pick = <K extends keyof OverrideT>(k: K): OverrideT[K] => pr[k] ?? vr[k] ?? base[k];
  const env = new Map<string, string>();
  for (const l of layers) for (const [k, v] of Object.entries(l.environment ?? {})) {
    env.delete(k); // a later layer's value also takes the later position
    env.set(k, v);
  }
  const lockers: string[] = [];
  for (const l of layers) for (const name of l.lockers ?? []) if (!lockers.includes(name)) lockers.push(name);
  const vols = new Map<string, string>();
  for (const l of layers) for (const v of l.volumes ?? []) {
    const r = resolveVolume(model, realm, v);
    if ('error' in r) throw new OzwError('OZW_UNKNOWN_REFERENCE', r.error);
    vols.set(r.target, r.text);
  }
  const nets = pick('networks') ?? [];
  const bc = pick('bridge-connector');
  const ports = bc
    ? model.portals.filter((p) => p.realm === realm.name && p.connector === bc.name).map((p) => `${p.port}:${bc.port}`).sort()
    : [];
  return {
    type: base.type,
    image: pick('image') ?? '',
    command: toArgv(pick('command')),
    entrypoint: toArgv(pick('entrypoint')),
    environment: [...env],
    lockers,
    volumes: [...vols.values()],
    networks: nets.map((n) => networkName(realm.name, n)),
    ports,
  };
}

export function specHash(r: Omit<ResolvedInstance, 'hash' | 'key' | 'source' | 'dependsOn'>): string {
  // Locker names are in the spec; secret values never are.
  const canonical = JSON.stringify([
    1, r.realm, r.name, r.service, r.variety, r.profile, r.spec.image, r.spec.command, r.spec.entrypoint,
    [...r.spec.environment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), r.spec.lockers, r.spec.volumes,
    r.spec.networks, r.spec.ports,
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 24);
}

export function resolveInstance(model: Model, req: InstanceRequest): ResolvedInstance {
  const realm = model.realms.get(req.realm);
  if (!realm) throw new OzwError('OZW_UNKNOWN_REFERENCE', `realm "${req.realm}" does not exist (realms: ${listOf(model.realms.keys())})`);
  const svc = realm.services.get(req.service);
  if (!svc) throw new OzwError('OZW_UNKNOWN_REFERENCE', `service "${req.service}" is not defined in realm "${req.realm}" (services: ${listOf(realm.services.keys())})`);
  if (req.variety !== null && !svc.varieties.has(req.variety)) {
    throw new OzwError('OZW_UNKNOWN_REFERENCE', `service "${req.service}" has no variety "${req.variety}" (varieties: ${listOf(svc.varieties.keys())})`);
  }
  if (req.profile !== null && !svc.profiles.has(req.profile)) {
    throw new OzwError('OZW_UNKNOWN_REFERENCE', `service "${req.service}" has no profile "${req.profile}" (profiles: ${listOf(svc.profiles.keys())})`);
  }
  const { type, ...spec } = resolveService(model, realm, svc, req.variety, req.profile);
  if (type === 'container' && !spec.image) {
    throw new OzwError('OZW_UNKNOWN_REFERENCE', `service "${req.service}" has no image for ${req.realm}:${req.name} (set image on the service, its variety or its profile)`);
  }
  const partial = { ...req, type, spec };
  const vr = req.variety === null ? {} : svc.varieties.get(req.variety) ?? {};
  const pr = req.profile === null ? {} : svc.profiles.get(req.profile) ?? {};
  const dependsOn = partDeps(pr) ?? partDeps(vr) ?? partDeps(svc.def) ?? [];
  return { ...partial, key: instanceKey(req.realm, req.name), hash: specHash(partial), dependsOn };
}

/** The instances the manifests ask for: every realm's persistent services. */
export function manifestRequests(model: Model): InstanceRequest[] {
  const out: InstanceRequest[] = [];
  for (const realm of model.realms.values()) {
    for (const ps of realm.persistent.values()) {
      out.push({ realm: realm.name, name: ps.name, service: ps.service, variety: ps.variety, profile: ps.profile, source: 'manifest' });
    }
  }
  return out;
}

const h8 = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 8);

/**
 * A compact fingerprint of each field of a spec, kept on the container as a
 * label so `plan` can say which fields a replacement changes. Values are
 * hashed (the image excepted); secret values are never part of a spec.
 */
export function specDigest(spec: ContainerSpec): string {
  return JSON.stringify({
    image: spec.image, command: h8(spec.command), entrypoint: h8(spec.entrypoint),
    env: Object.fromEntries(spec.environment.map(([k, v]) => [k, h8(v)])),
    lockers: spec.lockers, volumes: h8(spec.volumes), networks: h8(spec.networks), ports: h8(spec.ports),
  });
}

/** The fields that differ between two digests, e.g. ["image", "environment.GREETING"]. */
export function digestDiff(before: string | undefined, after: string): string[] {
  let a: Record<string, unknown>;
  try {
    a = JSON.parse(before ?? '') as Record<string, unknown>;
  } catch {
    return ['(unknown: the container predates spec digests)'];
  }
  const b = JSON.parse(after) as Record<string, unknown>;
  const out: string[] = [];
  for (const field of ['image', 'command', 'entrypoint', 'lockers', 'volumes', 'networks', 'ports']) {
    if (JSON.stringify(a[field]) !== JSON.stringify(b[field])) out.push(field);
  }
  const ea = (a.env ?? {}) as Record<string, string>;
  const eb = (b.env ?? {}) as Record<string, string>;
  for (const k of [...new Set([...Object.keys(ea), ...Object.keys(eb)])].sort()) {
    if (ea[k] !== eb[k]) out.push(`environment.${k}`);
  }
  return out;
}
