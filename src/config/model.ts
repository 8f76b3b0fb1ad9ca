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
}
export interface PersistentModel { name: string; service: string; variety: string | null; profile: string | null; origin: Origin }
export interface RealmModel {
  name: string;
  lockers: Map<string, Origin>;
  services: Map<string, ServiceModel>;
  persistent: Map<string, PersistentModel>;
}
export interface Model { realms: Map<string, RealmModel> }

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
export function buildModel(sources: Source[]): { model?: Model; problems: Problem[] } {
  const problems: Problem[] = [];
  const realms = new Map<string, RealmModel>();
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
    for (const [realmName, realm] of Object.entries(r.data.realms ?? {})) {
      let rm = realms.get(realmName);
      if (!rm) {
        rm = { name: realmName, lockers: new Map(), services: new Map(), persistent: new Map() };
        realms.set(realmName, rm);
      }
      if (!realm) continue;
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
        if (Array.isArray(def.profiles)) {
          def.profiles.forEach((p, j) => {
            const { name, ...rest } = p;
            if (profiles.has(name)) {
              const pp = origin([...at, 'profiles', j, 'name']);
              problems.push({ ...pp, path: pathText([...at, 'profiles', j, 'name']), message: `profile "${name}" is listed twice in service "${def.name}"` });
            }
            profiles.set(name, rest);
          });
        } else {
          for (const [k, v] of Object.entries(def.profiles ?? {})) profiles.set(k, v ?? {});
        }
        for (const ov of [...varieties.values(), ...profiles.values()]) {
          if (ov.volumes) ov.volumes = ov.volumes.map((v) => (typeof v === 'string' ? substitute(v, src.file) : v));
        }
        rm.services.set(def.name, { def, varieties, profiles, origin: o });
      });
      (realm['persistent-services'] ?? []).forEach((ps, i) => {
        const at = ['realms', realmName, 'persistent-services', i];
        const o = origin([...at, 'name']);
        const prev = rm.persistent.get(ps.name);
        if (prev) {
          problems.push({ ...o, path: pathText([...at, 'name']), message: `persistent service "${ps.name}" of realm "${realmName}" is also defined at ${prev.origin.file}:${prev.origin.line}:${prev.origin.col}` });
          return;
        }
        rm.persistent.set(ps.name, { name: ps.name, service: ps.service, variety: ps.variety ?? null, profile: ps.profile ?? null, origin: o });
      });
    }
  }
  if (problems.length) return { problems: sortProblems(problems) };
  const model: Model = { realms };
  problems.push(...crossCheck(model));
  return problems.length ? { problems: sortProblems(problems) } : { model, problems };
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
  for (const realm of model.realms.values()) {
    for (const svc of realm.services.values()) {
      const parts: [string, OverrideT][] = [['', svc.def], ...[...svc.varieties].map(([n, v]): [string, OverrideT] => [`variety "${n}"`, v]), ...[...svc.profiles].map(([n, v]): [string, OverrideT] => [`profile "${n}"`, v])];
      for (const [where, part] of parts) {
        for (const field of ['command', 'entrypoint'] as const) {
          const v = part[field];
          if (typeof v !== 'string') continue;
          try {
            splitWords(v);
          } catch (e) {
            out.push({ ...svc.origin, path: `realms.${realm.name}.service-definitions.${svc.def.name}${where ? ` ${where}` : ''}.${field}`, message: `${field}: ${(e as Error).message}` });
          }
        }
        for (const l of part.lockers ?? []) {
          if (!realm.lockers.has(l)) {
            const hint = didYouMean(l, realm.lockers.keys());
            out.push({ ...svc.origin, path: `realms.${realm.name}.service-definitions.${svc.def.name}${where ? ` ${where}` : ''}.lockers`, message: `locker "${l}" is not in realm "${realm.name}"'s vault (lockers: ${listOf(realm.lockers.keys())})${hint ? `; did you mean "${hint}"?` : ''}` });
          }
        }
      }
    }
    for (const ps of realm.persistent.values()) {
      const path = `realms.${realm.name}.persistent-services.${ps.name}`;
      const svc = realm.services.get(ps.service);
      if (!svc) {
        out.push({ ...ps.origin, path, message: `service "${ps.service}" is not defined in realm "${realm.name}" (services: ${listOf(realm.services.keys())})` });
        continue;
      }
      if (ps.variety !== null && !svc.varieties.has(ps.variety)) {
        out.push({ ...ps.origin, path, message: `service "${ps.service}" has no variety "${ps.variety}" (varieties: ${listOf(svc.varieties.keys())})` });
      }
      if (ps.profile !== null && !svc.profiles.has(ps.profile)) {
        out.push({ ...ps.origin, path, message: `service "${ps.service}" has no profile "${ps.profile}" (profiles: ${listOf(svc.profiles.keys())})` });
      }
      if (svc.def.type === 'container' && !(ps.profile !== null && svc.profiles.get(ps.profile)?.image) && !(ps.variety !== null && svc.varieties.get(ps.variety)?.image) && !svc.def.image) {
        out.push({ ...ps.origin, path, message: `service "${ps.service}" has no image for this instance (set image on the service, its variety or its profile)` });
      }
    }
  }
  return out;
}
