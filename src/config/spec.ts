// The instance spec grammar of the Python Ozwald CLI:
//   [realm:]NAME[service][variety][profile]
// Empty brackets skip a part; `[realm:]SERVICE` alone is an instance named
// after its service with no variety or profile.
import { OzwError } from '../errors.js';
import { SAFE_NAME } from './schema.js';

export interface ParsedSpec { realm: string; name: string; service: string; variety: string | null; profile: string | null }

const SPEC = /^(?:([^:[\]]+):)?([^:[\]]+)((?:\[[^[\]]*\]){0,3})$/;

export function parseSpec(text: string, defaultRealm = 'default'): ParsedSpec {
  const m = SPEC.exec(text);
  if (!m) throw new OzwError('OZW_SPEC_INVALID', `cannot parse instance spec "${text}": expected [realm:]NAME[service][variety][profile]`);
  const parts = [...(m[3] ?? '').matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!.trim() || null);
  const realm = m[1] ?? defaultRealm;
  const name = m[2]!;
  const spec: ParsedSpec = { realm, name, service: parts[0] ?? name, variety: parts[1] ?? null, profile: parts[2] ?? null };
  for (const [what, v] of [['realm', spec.realm], ['name', spec.name], ['service', spec.service], ['variety', spec.variety], ['profile', spec.profile]] as const) {
    if (v !== null && !SAFE_NAME.test(v)) throw new OzwError('OZW_SPEC_INVALID', `instance spec "${text}": ${what} "${v}" is not a valid name (letters, digits, '_', '.', '-')`);
  }
  return spec;
}

export function formatSpec(s: { realm: string; name: string; service: string; variety: string | null; profile: string | null }): string {
  return `${s.realm}:${s.name}[${s.service}][${s.variety ?? ''}][${s.profile ?? ''}]`;
}
