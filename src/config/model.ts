// Building the merged model from parsed fragments: pure, no I/O.
import { dirname } from 'node:path';
import { Manifest, KNOWN_KEYS, type ServiceDefT, type OverrideT } from './schema.js';
import { parseYamlFile, pathText, type ParsedFile, type Problem, type Path } from './yaml.js';
import { didYouMean, listOf } from './suggest.js';
import { splitWords } from './words.js';

export interface Origin { file: string; line: number; col: number }
export interface ServiceModel {
  def: ServiceDefT;
  varieties: Map<string, OverrideT>;
  profiles: Map<string, OverrideT>;
  origin: Origin;
  /** Where each part (base "", "variety x", "profile y") sits in its file, for precise errors. */
  parts: { label: string; part: OverrideT; path: Path }[];
  pos(path: Path): Origin;
}
export interface PersistentModel { name: string; service: string; variety: string | null; profile: string | null; origin: Origin; path: Path; pos(path: Path): Origin }
export interface RealmModel {
  name: string;
  lockers: Map<string, Origin>;
  services: Map<string, ServiceModel>;
  persistent: Map<string, PersistentModel>;
  networks: Map<string, { type: 'bridge' | 'ipvlan' | 'none'; origin: Origin }>;
  volumes: Map<string, { type: string; source: string; origin: Origin }>;
}
export interface VolumeModel { type: string; source?: string; origin: Origin }
export interface PortalModel { name: string; realm: string; connector: string; port: number; origin: Origin }
export interface Model {
  realms: Map<string, RealmModel>;
  /** Top-level volumes (bind, named, …), by name. */
  volumes: Map<string, VolumeModel>;
  portals: PortalModel[];
}

export interface Source { file: string; text: string }

function zodProblems(pf: ParsedFile, issues: ReadonlyArray<{ code: string; path: PropertyKey[]; message: string; keys?: string[]; issues?: unknown[] }>): Problem[] {
  const out: Problem[] = [];
  for (const iss of issues) {
    const path = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (iss.code === 'unrecognized_keys' && iss.keys) {
      for (const k of iss.keys) {
        const pos = pf.keyPosOf([...path, k]);
        const hint = didYouMean(k, KNOWN_KEYS);
        out.push({ file: pf.file, ...pos, path: pathText([...path, k]), message: `unknown key "${k}"${hint ? `; did you mean "${hint}"?` : ''}` });
      }
      continue;
    }
    let message = iss.message;
    if (iss.code === 'invalid_key') {
      const inner = (iss.issues as { message: string }[] | undefined)?.[0];
      message = `invalid name "${String(path[path.length - 1])}": ${inner?.message ?? message}`;
      out.push({ file: pf.file, ...pf.keyPosOf(path), path: pathText(path), message });
      continue;
    }
    if (message.startsWith('Invalid input: expected')) {
      message = message.replace('Invalid input: expected', 'expected').replace('received', 'got');
    }
    out.push({ file: pf.file, ...pf.posOf(path), path: pathText(path), message });
  }
  return out;
}

function substitute(s: string, file: string): string {
  // Python Ozwald compatibility: ${SETTINGS_FILE_DIR} is the folder of the file that says it.
  return s.replaceAll('${SETTINGS_FILE_DIR}', dirname(file));
}

/** Parses and validates fragments and merges them into one model; every problem is reported, not just the first. */
export function buildModel(sources: Source[]): { model?: Model; problems: Problem[]; warnings?: Problem[] } {
  const problems: Problem[] = [];
  // Accepted for compatibility but without effect: said, never silently dropped.
  const warnings: Problem[] = [];
  const realms = new Map<string, RealmModel>();
  const volumes = new Map<string, VolumeModel>();
  const portals: PortalModel[] = [];
  for (const src of sources) {
    const { parsed, problems: yp } = parseYamlFile(src.file, src.text);
    if (!parsed) {
      problems.push(...yp);
      continue;
    }
    if (parsed.data === null || typeof parsed.data !== 'object' || Array.isArray(parsed.data)) {
      problems.push({ file: src.file, line: 1, col: 1, path: '', message: 'a manifest must be a map with keys such as realms, hosts, provisioners' });
      continue;
    }
    const r = Manifest.safeParse(parsed.data);
    if (!r.success) {
      problems.push(...zodProblems(parsed, r.error.issues as never));
      continue;
    }
    const origin = (path: Path): Origin => ({ file: src.file, ...parsed.posOf(path) });
    const twice = (what: string, at: Path, prev: Origin) =>
      problems.push({ ...origin(at), path: pathText(at), message: `${what} is also defined at ${prev.file}:${prev.line}:${prev.col}` });
    for (const [name, v] of Object.entries(r.data.volumes ?? {})) {
      const at = ['volumes', name];
      const prev = volumes.get(name);
      if (prev) {
        twice(`volume "${name}"`, at, prev.origin);
        continue;
      }
      const type = typeof v?.type === 'string' ? v.type : '';
      const source = typeof v?.source === 'string' ? substitute(v.source, src.file) : undefined;
      if (!['bind', 'named', 'tmpfs', 'nfs'].includes(type)) {
        problems.push({ ...origin([...at, 'type']), path: pathText([...at, 'type']), message: `volume type must be bind, named, tmpfs or nfs (got ${JSON.stringify(v?.type ?? null)})` });
        continue;
      }
      if (type === 'bind' && !source?.startsWith('/')) {
        problems.push({ ...origin([...at, 'source']), path: pathText([...at, 'source']), message: 'a bind volume needs an absolute source path (${SETTINGS_FILE_DIR} is the folder of this file)' });
        continue;
      }
      volumes.set(name, { type, ...(source ? { source } : {}), origin: origin(at) });
    }
    (r.data.portals ?? []).forEach((p, i) => {
      portals.push({ name: p.name, realm: p.bridge.realm ?? 'default', connector: p.bridge.connector, port: p.port, origin: origin(['portals', i]) });
    });
    for (const [realmName, realm] of Object.entries(r.data.realms ?? {})) {
      let rm = realms.get(realmName);
      if (!rm) {
        rm = { name: realmName, lockers: new Map(), services: new Map(), persistent: new Map(), networks: new Map(), volumes: new Map() };
        realms.set(realmName, rm);
      }
      if (!realm) continue;
      (realm.networks ?? []).forEach((n, i) => {
        const at = ['realms', realmName, 'networks', i];
        const prev = rm.networks.get(n.name);
        if (prev) twice(`network "${n.name}" of realm "${realmName}"`, at, prev.origin);
        else rm.networks.set(n.name, { type: n.type ?? 'bridge', origin: origin(at) });
      });
      (realm.volumes ?? []).forEach((v, i) => {
        const at = ['realms', realmName, 'volumes', i];
        const prev = rm.volumes.get(v.name);
        if (prev) twice(`volume "${v.name}" of realm "${realmName}"`, at, prev.origin);
        else rm.volumes.set(v.name, { type: v.type, source: v.source, origin: origin(at) });
      });
      const lockers = realm.vault?.lockers;
      const lockerNames = Array.isArray(lockers) ? lockers : Object.keys(lockers ?? {});
      lockerNames.forEach((name, i) => {
        const at = Array.isArray(lockers) ? ['realms', realmName, 'vault', 'lockers', i] : ['realms', realmName, 'vault', 'lockers', name];
        const o = { file: src.file, ...(Array.isArray(lockers) ? parsed.posOf(at) : parsed.keyPosOf(at)) };
        const prev = rm.lockers.get(name);
        if (prev) problems.push({ ...o, path: pathText(at), message: `locker "${name}" of realm "${realmName}" is also defined at ${prev.file}:${prev.line}:${prev.col}` });
        else rm.lockers.set(name, o);
      });
      (realm['service-definitions'] ?? []).forEach((def, i) => {
        const at = ['realms', realmName, 'service-definitions', i];
        const o = origin([...at, 'name']);
        const prev = rm.services.get(def.name);
        if (prev) {
          problems.push({ ...o, path: pathText([...at, 'name']), message: `service "${def.name}" of realm "${realmName}" is also defined at ${prev.origin.file}:${prev.origin.line}:${prev.origin.col}` });
          return;
        }
        if (def.volumes) def.volumes = def.volumes.map((v) => (typeof v === 'string' ? substitute(v, src.file) : v));
        const varieties = new Map<string, OverrideT>(Object.entries(def.varieties ?? {}).map(([k, v]) => [k, v ?? {}]));
        const profiles = new Map<string, OverrideT>();
        const parts: ServiceModel['parts'] = [{ label: '', part: def, path: at }];
        for (const [k, v] of varieties) parts.push({ label: `variety "${k}"`, part: v, path: [...at, 'varieties', k] });
        if (Array.isArray(def.profiles)) {
          def.profiles.forEach((p, j) => {
            const { name, ...rest } = p;
            if (profiles.has(name)) {
              const pp = origin([...at, 'profiles', j, 'name']);
              problems.push({ ...pp, path: pathText([...at, 'profiles', j, 'name']), message: `profile "${name}" is listed twice in service "${def.name}"` });
            }
            profiles.set(name, rest);
            parts.push({ label: `profile "${name}"`, part: rest, path: [...at, 'profiles', j] });
          });
        } else {
          for (const [k, v] of Object.entries(def.profiles ?? {})) {
            profiles.set(k, v ?? {});
            parts.push({ label: `profile "${k}"`, part: v ?? {}, path: [...at, 'profiles', k] });
          }
        }
        // Other types load and are not run; one a typo away from container was meant to run.
        if (def.type !== 'container' && didYouMean(def.type, ['container']) === 'container') {
          warnings.push({ ...origin([...at, 'type']), path: pathText([...at, 'type']), message: `type "${def.type}" is not run by this provisioner (did you mean container?)` });
        }
        for (const { part, path } of parts) {
          if (part.env_file === undefined) continue;
          const wat = [...path, 'env_file'];
          warnings.push({ ...origin(wat), path: pathText(wat), message: 'env_file is not used by this provisioner (the Python Ozwald did not use it either): put the values in environment, or in a locker if they are secret' });
        }
        for (const ov of [...varieties.values(), ...profiles.values()]) {
          if (ov.volumes) ov.volumes = ov.volumes.map((v) => (typeof v === 'string' ? substitute(v, src.file) : v));
        }
        rm.services.set(def.name, { def, varieties, profiles, origin: o, parts, pos: origin });
      });
      (realm['persistent-services'] ?? []).forEach((ps, i) => {
        const at = ['realms', realmName, 'persistent-services', i];
        const name = ps.name ?? ps.service; // an instance is named after its service unless named
        const nameAt = [...at, ps.name === undefined ? 'service' : 'name'];
        const o = origin(nameAt);
        const prev = rm.persistent.get(name);
        if (prev) {
          problems.push({ ...o, path: pathText(nameAt), message: `persistent service "${name}" of realm "${realmName}" is also defined at ${prev.origin.file}:${prev.origin.line}:${prev.origin.col}` });
          return;
        }
        rm.persistent.set(name, { name, service: ps.service, variety: ps.variety ?? null, profile: ps.profile ?? null, origin: o, path: at, pos: origin });
      });
    }
  }
  if (problems.length) return { problems: sortProblems(problems) };
  const model: Model = { realms, volumes, portals };
  problems.push(...crossCheck(model));
  return problems.length ? { problems: sortProblems(problems) } : { model, problems, warnings: sortProblems(warnings) };
}

/** A depends-on cycle (over every part of every service) is an error naming the cycle. */
function dependencyCycles(realm: RealmModel): Problem[] {
  const edges = new Map<string, Set<string>>();
  for (const svc of realm.services.values()) {
    const deps = new Set<string>();
    for (const { part } of svc.parts) for (const d of part['depends-on'] ?? part.depends_on ?? []) if (realm.services.has(d)) deps.add(d);
    edges.set(svc.def.name, deps);
  }
  const out: Problem[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const reported = new Set<string>();
  const visit = (n: string, stack: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      const cycle = [...stack.slice(stack.indexOf(n)), n];
      const id = [...cycle.slice(0, -1)].sort().join(',');
      if (!reported.has(id)) {
        reported.add(id);
        const svc = realm.services.get(n)!;
        out.push({ ...svc.origin, path: `realms.${realm.name}.service-definitions.${n}.depends-on`, message: `depends-on cycle: ${cycle.join(' → ')}` });
      }
      return;
    }
    state.set(n, 'open');
    for (const d of edges.get(n) ?? []) visit(d, [...stack, n]);
    state.set(n, 'done');
  };
  for (const n of [...edges.keys()].sort()) visit(n, []);
  return out;
}

export type VolumeEntry = NonNullable<OverrideT['volumes']>[number];

/**
 * A service's volume entry → a `docker run --volume` argument, as the Python
 * Ozwald resolved them: "/host:/ctr[:mode]" as is; "name:/ctr[:mode]" and
 * {name, target, read_only} through the realm's or the top-level volumes.
 */
export function resolveVolume(model: Pick<Model, 'volumes'>, realm: Pick<RealmModel, 'name' | 'volumes'>, v: VolumeEntry): { text: string; target: string } | { error: string } {
  let name: string;
  let target: string;
  let mode: string;
  if (typeof v === 'string') {
    const parts = v.split(':');
    if (parts.length < 2 || parts.length > 3) return { error: `volume "${v}" must be source:/target or source:/target:ro|rw` };
    [name, target, mode = 'rw'] = parts as [string, string, string?] as [string, string, string];
    if (v.startsWith('/')) {
      if (!target.startsWith('/')) return { error: `volume "${v}": the container path must be absolute` };
      if (!['ro', 'rw'].includes(mode)) return { error: `volume "${v}": mode must be ro or rw` };
      return { text: v, target };
    }
  } else {
    name = v.name;
    target = v.target;
    mode = v.read_only ? 'ro' : 'rw';
  }
  if (!target.startsWith('/')) return { error: `volume "${name}": the container path "${target}" must be absolute` };
  if (!['ro', 'rw'].includes(mode)) return { error: `volume "${name}": mode must be ro or rw (got "${mode}")` };
  if (realm.volumes.has(name)) return { text: `${name}:${target}:${mode}`, target };
  const top = model.volumes.get(name);
  if (!top) {
    return { error: `volume "${name}" is not defined (realm "${realm.name}" volumes: ${listOf(realm.volumes.keys())}; top-level volumes: ${listOf(model.volumes.keys())}); a host path must start with /` };
  }
  if (top.type === 'bind') return { text: `${top.source}:${target}:${mode}`, target };
  if (top.type === 'named') return { text: `${name}:${target}:${mode}`, target };
  return { error: `volume "${name}" is of type ${top.type}, which this provisioner does not mount yet (bind and named are supported)` };
}

/** Files in the order read, then by position: the order an editor shows them. */
function sortProblems(ps: Problem[]): Problem[] {
  const order = new Map<string, number>();
  ps.forEach((p) => order.has(p.file) || order.set(p.file, order.size));
  return [...ps].sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line || a.col - b.col);
}

/** References between realms' parts: lockers named by services, persistent services' service/variety/profile. */
function crossCheck(model: Model): Problem[] {
  const out: Problem[] = [];
  const ports = new Map<number, PortalModel>();
  for (const p of model.portals) {
    const prev = ports.get(p.port);
    if (prev) out.push({ ...p.origin, path: `portals.${p.name}.port`, message: `port ${p.port} is also used by portal "${prev.name}" at ${prev.origin.file}:${prev.origin.line}:${prev.origin.col}` });
    ports.set(p.port, p);
    const realm = model.realms.get(p.realm);
    const connectors = new Set<string>();
    for (const svc of realm?.services.values() ?? []) {
      for (const part of [svc.def, ...svc.varieties.values(), ...svc.profiles.values()]) {
        const bc = part['bridge-connector'];
        if (bc) connectors.add(bc.name);
      }
    }
    if (!realm) out.push({ ...p.origin, path: `portals.${p.name}.bridge.realm`, message: `realm "${p.realm}" does not exist (realms: ${listOf(model.realms.keys())})` });
    else if (!connectors.has(p.connector)) out.push({ ...p.origin, path: `portals.${p.name}.bridge.connector`, message: `no service in realm "${p.realm}" has a bridge-connector named "${p.connector}" (connectors: ${listOf(connectors)})` });
  }
  for (const realm of model.realms.values()) {
    for (const svc of realm.services.values()) {
      for (const { part, path } of svc.parts) {
        const problem = (at: Path, message: string) => out.push({ ...svc.pos(at), path: pathText(at), message });
        for (const field of ['command', 'entrypoint'] as const) {
          const v = part[field];
          if (typeof v !== 'string') continue;
          try {
            splitWords(v);
          } catch (e) {
            problem([...path, field], `${field}: ${(e as Error).message}`);
          }
        }
        (part.networks ?? []).forEach((n, i) => {
          if (!realm.networks.has(n)) problem([...path, 'networks', i], `network "${n}" is not declared in realm "${realm.name}" (networks: ${listOf(realm.networks.keys())})`);
        });
        (part.volumes ?? []).forEach((v, i) => {
          const r = resolveVolume(model, realm, v);
          if ('error' in r) problem([...path, 'volumes', i], r.error);
        });
        const depsField = part['depends-on'] ? 'depends-on' : 'depends_on';
        (part['depends-on'] ?? part.depends_on ?? []).forEach((dep, i) => {
          if (!realm.services.has(dep)) {
            const hint = didYouMean(dep, realm.services.keys());
            problem([...path, depsField, i], `depends on service "${dep}", which realm "${realm.name}" does not define (services: ${listOf(realm.services.keys())})${hint ? `; did you mean "${hint}"?` : ''}`);
          }
        });
        (part.lockers ?? []).forEach((l, i) => {
          if (!realm.lockers.has(l)) {
            const hint = didYouMean(l, realm.lockers.keys());
            problem([...path, 'lockers', i], `locker "${l}" is not in realm "${realm.name}"'s vault (lockers: ${listOf(realm.lockers.keys())})${hint ? `; did you mean "${hint}"?` : ''}`);
          }
        });
      }
    }
    out.push(...dependencyCycles(realm));
    for (const ps of realm.persistent.values()) {
      const problem = (field: string, message: string) => out.push({ ...ps.pos([...ps.path, field]), path: pathText([...ps.path, field]), message });
      const svc = realm.services.get(ps.service);
      if (!svc) {
        const hint = didYouMean(ps.service, realm.services.keys());
        problem('service', `service "${ps.service}" is not defined in realm "${realm.name}" (services: ${listOf(realm.services.keys())})${hint ? `; did you mean "${hint}"?` : ''}`);
        continue;
      }
      if (ps.variety !== null && !svc.varieties.has(ps.variety)) {
        problem('variety', `service "${ps.service}" has no variety "${ps.variety}" (varieties: ${listOf(svc.varieties.keys())})`);
      }
      if (ps.profile !== null && !svc.profiles.has(ps.profile)) {
        problem('profile', `service "${ps.service}" has no profile "${ps.profile}" (profiles: ${listOf(svc.profiles.keys())})`);
      }
      if (svc.def.type === 'container' && !(ps.profile !== null && svc.profiles.get(ps.profile)?.image) && !(ps.variety !== null && svc.varieties.get(ps.variety)?.image) && !svc.def.image) {
        problem('service', `service "${ps.service}" has no image for this instance (set image on the service, its variety or its profile)`);
      }
    }
  }
  return out;
}
