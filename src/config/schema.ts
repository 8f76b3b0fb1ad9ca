// The manifest schema (Python Ozwald settings.yml, made strict). Field names
// follow the Python spelling; where Python used an underscore and DESIGN.md a
// hyphen (depends-on), both are accepted.
import { z } from 'zod';
import { ENV_NAME } from '../vault/payload.js';

/** Realm, service, instance, locker, network names: they become Redis keys and container names. */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const safeName = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(SAFE_NAME, {
    error: `${what} must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63 characters)`,
  });

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : typeof v);

const envValue = z.string({
  error: (iss) => `environment values must be a string, number or boolean, not ${typeName(iss.input)}`,
})
  // The value travels in an env-file: one line, at most the Docker CLI's 64 KiB.
  .refine((v) => !/[\n\r\0]/.test(v), { error: 'environment values cannot hold a newline, carriage return or NUL (an env-file cannot carry them; a "|" block keeps its final newline, "|-" does not)' })
  .refine((v) => Buffer.byteLength(v, 'utf8') < 65000, { error: 'environment values must stay under 64 KiB (the Docker CLI\'s env-file line limit)' });
const environment = z.record(
  z.string().regex(ENV_NAME, { error: 'environment names must match [A-Za-z_][A-Za-z0-9_.-]*' }),
  envValue,
  { error: 'environment must be a map of NAME: value' },
);

const stringOrList = z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' });

const volumeRef = z.union(
  [
    z.string(),
    z.strictObject({ name: z.string(), target: z.string(), read_only: z.boolean().optional() }),
  ],
  { error: 'a volume is "source:/target[:mode]" or {name, target, read_only}' },
);

const bridgeConnector = z.strictObject({ port: z.int().min(1).max(65535), name: z.string(), network: z.string().optional() });
const footprint = z.strictObject({ 'run-time': z.int().optional(), 'run-script': z.string().optional() });

// The reference grammar of the Docker distribution spec: [domain[:port]/]path[:tag][@digest],
// path components lower case; checked here so a typo fails validate, not a launch.
const refAlnum = '[a-z0-9]+';
const refComponent = `${refAlnum}(?:(?:[._]|__|-+)${refAlnum})*`;
const refDomainPart = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const refDomain = `(?:${refDomainPart}(?:\\.${refDomainPart})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
export const IMAGE_REF = new RegExp(`^(?:${refDomain}/)?${refComponent}(?:/${refComponent})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);

/** Fields a variety or a profile may override. */
const overrideShape = {
  description: z.string().optional(),
  // A Docker image reference (so never starting with '-': it cannot read as an option).
  image: z.string().regex(IMAGE_REF, { error: 'image must be a Docker image reference such as name:tag or registry/name@sha256:… (lower-case repository path)' }).optional(),
  command: stringOrList.optional(),
  entrypoint: stringOrList.optional(),
  environment: environment.optional(),
  env_file: stringOrList.optional(),
  volumes: z.array(volumeRef).optional(),
  networks: z.array(z.string()).optional(),
  'depends-on': z.array(z.string()).optional(),
  depends_on: z.array(z.string()).optional(),
  'bridge-connector': bridgeConnector.optional(),
  properties: z.record(z.string(), z.unknown()).optional(),
  footprint: footprint.optional(),
  lockers: z.array(safeName('a locker name')).optional(),
};
export const Override = z.strictObject(overrideShape);
const NamedProfile = z.strictObject({ name: safeName('a profile name'), ...overrideShape });

export const ServiceDef = z.strictObject({
  name: safeName('a service name'),
  type: z.string({ error: 'type is required (container is the one that runs)' }),
  ...overrideShape,
  varieties: z.record(safeName('a variety name'), Override.nullable()).optional(),
  profiles: z.union([z.record(safeName('a profile name'), Override.nullable()), z.array(NamedProfile)], {
    error: 'profiles must be a map of name: {fields} or a list of {name, fields}',
  }).optional(),
});

export const PersistentService = z.strictObject({
  /** The instance name; by default the service's (DESIGN.md). */
  name: safeName('an instance name').optional(),
  service: safeName('a service name'),
  variety: z.string().nullable().optional(),
  profile: z.string().nullable().optional(),
});

export const Realm = z.strictObject({
  description: z.string().optional(),
  networks: z.array(z.strictObject({ name: safeName('a network name'), type: z.enum(['bridge', 'ipvlan', 'none']).optional() })).nullable().optional(),
  volumes: z.array(z.strictObject({ name: z.string(), type: z.enum(['tmp-writeable', 'versioned-read-only']), source: z.string() })).nullable().optional(),
  vault: z.strictObject({
    lockers: z.union([z.record(safeName('a locker name'), z.unknown()), z.array(safeName('a locker name'))], {
      error: 'vault.lockers must be a map of locker names or a list of them',
    }).optional(),
  }).nullable().optional(),
  // An empty list written as a bare key (`persistent-services:`) reads as null.
  'service-definitions': z.array(ServiceDef).nullable().optional(),
  'persistent-services': z.array(PersistentService).nullable().optional(),
});

export const Manifest = z.strictObject({
  hosts: z.array(z.strictObject({ name: z.string(), ip: z.string(), resources: z.array(z.record(z.string(), z.unknown())).optional() })).optional(),
  provisioners: z.array(z.strictObject({
    name: z.string(),
    host: z.string(),
    cache: z.strictObject({ type: z.string(), parameters: z.record(z.string(), z.unknown()).optional() }).optional(),
  })).optional(),
  volumes: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).optional(),
  realms: z.record(safeName('a realm name'), Realm.nullable()).optional(),
  portals: z.array(z.strictObject({
    name: z.string(),
    bridge: z.strictObject({ realm: z.string().optional(), connector: z.string() }),
    port: z.int().min(1).max(65535),
  })).optional(),
});

export type OverrideT = z.infer<typeof Override>;
export type ServiceDefT = z.infer<typeof ServiceDef>;
export type RealmT = z.infer<typeof Realm>;
export type ManifestT = z.infer<typeof Manifest>;

/** Every key the schema knows, for "did you mean" hints. */
export const KNOWN_KEYS = [
  ...Object.keys(overrideShape), 'name', 'type', 'varieties', 'profiles', 'service', 'variety', 'profile',
  'networks', 'volumes', 'vault', 'lockers', 'service-definitions', 'persistent-services',
  'hosts', 'provisioners', 'realms', 'portals', 'ip', 'resources', 'host', 'cache', 'parameters', 'bridge', 'port',
  'connector', 'realm', 'target', 'read_only', 'source', 'network', 'run-time', 'run-script',
];

/** The JSON Schema of the manifest format (for editors with yaml-language-server). */
export function manifestJsonSchema(): unknown {
  return z.toJSONSchema(Manifest, { io: 'input', unrepresentable: 'any' });
}
