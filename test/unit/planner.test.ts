import t from 'tap';
import { plan, type PlanInput, type Plan } from '../../src/controller/planner.js';
import type { ResolvedInstance } from '../../src/config/resolve.js';
import type { ObservedContainer } from '../../src/runtime/docker.js';

const P = 'local';
function inst(name: string, hash: string, lockers: string[] = [], type = 'container', dependsOn: string[] = []): ResolvedInstance {
  return {
    realm: 'r', name, service: name, variety: null, profile: null, source: 'manifest', key: `r/${name}`, type, hash, dependsOn,
    spec: { image: 'img', command: null, entrypoint: null, environment: [], lockers, volumes: [], networks: [], ports: [] },
  };
}
function ctr(instance: string, hash: string, o: Partial<ObservedContainer> = {}): ObservedContainer {
  return { id: `id-${instance}-${hash}`, name: `ozsvc--r--${instance}`, realm: 'r', instance, service: instance, provisioner: P, specHash: hash, running: true, state: 'running', status: 'Up', ...o };
}
function run(o: Partial<PlanInput>): Plan {
  return plan({ provisioner: P, desired: [], observed: [], unlockKeys: new Set(), vaultKeys: new Set(), inFlight: new Set(), backoff: new Map(), now: 1000, ...o });
}
const summary = (p: Plan) => ({
  actions: p.actions.map((a) => (a.kind === 'remove' ? `remove ${a.container.name} (${a.why})` : a.kind === 'replace' ? `replace ${a.key} (${a.why}) lockers=${a.lockers.join(',')}` : `create ${a.key} lockers=${a.lockers.join(',')}`)),
  phases: p.statuses.map((s) => `${s.realm}/${s.instance} ${s.phase} ${s.reason}${s.lockers.length ? ` [${s.lockers.join(',')}]` : ''}`),
});

const table: [string, Partial<PlanInput>, ReturnType<typeof summary>][] = [
  ['nothing desired, nothing running', {}, { actions: [], phases: [] }],
  ['create a missing instance', { desired: [inst('web', 'h1')] }, { actions: ['create r/web lockers='], phases: ['r/web Pending Creating'] }],
  ['a matching running container is left alone', { desired: [inst('web', 'h1')], observed: [ctr('web', 'h1')] }, { actions: [], phases: ['r/web Running Running'] }],
  ['replace on a spec-hash change', { desired: [inst('web', 'h2')], observed: [ctr('web', 'h1')] }, { actions: ['replace r/web (spec-changed) lockers='], phases: ['r/web Pending SpecChanged'] }],
  ['recreate an exited container', { desired: [inst('web', 'h1')], observed: [ctr('web', 'h1', { running: false, state: 'exited' })] }, { actions: ['replace r/web (not-running) lockers='], phases: ['r/web Pending NotRunning'] }],
  ['remove an orphan of ours', { observed: [ctr('old', 'h1')] }, { actions: ['remove ozsvc--r--old (not-desired)'], phases: [] }],
  ['never touch another provisioner\'s container', { observed: [ctr('web', 'h1', { provisioner: 'other' })] }, { actions: [], phases: [] }],
  ['another provisioner\'s container does not count as ours', { desired: [inst('web', 'h1')], observed: [ctr('web', 'h1', { provisioner: 'other' })] }, { actions: ['create r/web lockers='], phases: ['r/web Pending Creating'] }],
  ['a duplicate of ours is removed, the canonical one kept', { desired: [inst('web', 'h1')], observed: [ctr('web', 'h1', { id: 'b', name: 'ozsvc--r--web--replaced-abc' }), ctr('web', 'h1')] }, { actions: ['remove ozsvc--r--web--replaced-abc (duplicate)'], phases: ['r/web Running Running'] }],
  ['Locked when nothing is sealed', { desired: [inst('api', 'h1', ['keys'])] }, { actions: [], phases: ['r/api Locked LockerEmpty [keys]'] }],
  ['Locked while the unlock key is missing', { desired: [inst('api', 'h1', ['keys'])], vaultKeys: new Set(['r:keys']) }, { actions: [], phases: ['r/api Locked WaitingForUnlock [keys]'] }],
  ['Locked names only the lockers still missing', { desired: [inst('api', 'h1', ['a', 'b', 'c'])], vaultKeys: new Set(['r:a', 'r:b', 'r:c']), unlockKeys: new Set(['r:b']) }, { actions: [], phases: ['r/api Locked WaitingForUnlock [a,c]'] }],
  ['an unlock key of another realm does not count', { desired: [inst('api', 'h1', ['keys'])], vaultKeys: new Set(['r:keys']), unlockKeys: new Set(['q:keys']) }, { actions: [], phases: ['r/api Locked WaitingForUnlock [keys]'] }],
  ['create with lockers once every key is there', { desired: [inst('api', 'h1', ['a', 'b'])], vaultKeys: new Set(['r:a', 'r:b']), unlockKeys: new Set(['r:a', 'r:b']) }, { actions: ['create r/api lockers=a,b'], phases: ['r/api Pending Creating'] }],
  ['a running secret service with a changed spec keeps running until unlocked', { desired: [inst('api', 'h2', ['keys'])], observed: [ctr('api', 'h1')], vaultKeys: new Set(['r:keys']) }, { actions: [], phases: ['r/api Locked WaitingForUnlock [keys]'] }],
  ['…and is replaced once unlocked', { desired: [inst('api', 'h2', ['keys'])], observed: [ctr('api', 'h1')], vaultKeys: new Set(['r:keys']), unlockKeys: new Set(['r:keys']) }, { actions: ['replace r/api (spec-changed) lockers=keys'], phases: ['r/api Pending SpecChanged'] }],
  ['sealed again since start: StaleSecrets until unlocked', { desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1', { secrets: 'keys=v1' })], vaultKeys: new Set(['r:keys']), vaultVersions: new Map([['r:keys', 'v2']]) }, { actions: [], phases: ['r/api Running StaleSecrets [keys]'] }],
  ['…then replaced with the new secrets', { desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1', { secrets: 'keys=v1' })], vaultKeys: new Set(['r:keys']), vaultVersions: new Map([['r:keys', 'v2']]), unlockKeys: new Set(['r:keys']) }, { actions: ['replace r/api (secrets-rotated) lockers=keys'], phases: ['r/api Pending SecretsRotated'] }],
  ['sealed again, then a wrong token: still Running, with the reason', { desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1', { secrets: 'keys=v1' })], vaultKeys: new Set(['r:keys']), vaultVersions: new Map([['r:keys', 'v2']]), lockedReasons: new Map([['r/api', { reason: 'WrongToken', message: 'the token did not open locker vault:r:keys' }]]) }, { actions: [], phases: ['r/api Running WrongToken [keys]'] }],
  ['same sealed version: Running', { desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1', { secrets: 'keys=v2' })], vaultKeys: new Set(['r:keys']), vaultVersions: new Map([['r:keys', 'v2']]) }, { actions: [], phases: ['r/api Running Running'] }],
  ['a running secret service with an unchanged spec needs no token', { desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1')] }, { actions: [], phases: ['r/api Running Running'] }],
  ['an in-flight instance is left alone, and so is its container', { desired: [inst('web', 'h2')], observed: [ctr('web', 'h1')], inFlight: new Set(['r/web']) }, { actions: [], phases: ['r/web Starting InProgress'] }],
  ['an in-flight removal is not planned twice', { observed: [ctr('old', 'h1')], inFlight: new Set(['r/old']) }, { actions: [], phases: [] }],
  ['back-off holds a failed instance until its time', { desired: [inst('web', 'h1')], backoff: new Map([['r/web', { until: 5000, reason: 'LaunchFailed', message: 'boom' }]]) }, { actions: [], phases: ['r/web BackOff LaunchFailed'] }],
  ['a changed spec is not held by the old spec\'s back-off', { desired: [inst('web', 'h2')], backoff: new Map([['r/web', { until: 5000, reason: 'LaunchFailed', message: 'boom', specHash: 'h1' }]]) }, { actions: ['create r/web lockers='], phases: ['r/web Pending Creating'] }],
  ['the same spec is held', { desired: [inst('web', 'h1')], backoff: new Map([['r/web', { until: 5000, reason: 'LaunchFailed', message: 'boom', specHash: 'h1' }]]) }, { actions: [], phases: ['r/web BackOff LaunchFailed'] }],
  ['back-off over: retried', { desired: [inst('web', 'h1')], backoff: new Map([['r/web', { until: 900, reason: 'LaunchFailed', message: 'boom' }]]) }, { actions: ['create r/web lockers='], phases: ['r/web Pending Creating'] }],
  ['back-off does not hide a running instance', { desired: [inst('web', 'h1')], observed: [ctr('web', 'h1')], backoff: new Map([['r/web', { until: 5000, reason: 'CrashLoop', message: 'x' }]]) }, { actions: [], phases: ['r/web Running Running'] }],
  ['a wrong token keeps its reason while still waiting', { desired: [inst('api', 'h1', ['keys'])], vaultKeys: new Set(['r:keys']), lockedReasons: new Map([['r/api', { reason: 'WrongToken', message: 'the token did not open locker vault:r:keys' }]]) }, { actions: [], phases: ['r/api Locked WrongToken [keys]'] }],
  ['depends-on: the dependency starts first, the dependent waits', { desired: [inst('api', 'h1', [], 'container', ['db']), inst('db', 'h1')] }, { actions: ['create r/db lockers='], phases: ['r/api Pending WaitingForDependency', 'r/db Pending Creating'] }],
  ['depends-on: once the dependency runs, the dependent starts', { desired: [inst('api', 'h1', [], 'container', ['db']), inst('db', 'h1')], observed: [ctr('db', 'h1')] }, { actions: ['create r/api lockers='], phases: ['r/api Pending Creating', 'r/db Running Running'] }],
  ['depends-on: a dependency being replaced holds the dependent', { desired: [inst('api', 'h1', [], 'container', ['db']), inst('db', 'h2')], observed: [ctr('db', 'h1')] }, { actions: ['replace r/db (spec-changed) lockers='], phases: ['r/api Pending WaitingForDependency', 'r/db Pending SpecChanged'] }],
  ['depends-on: a running dependent is left alone while its dependency is replaced', { desired: [inst('api', 'h1', [], 'container', ['db']), inst('db', 'h2')], observed: [ctr('api', 'h1'), ctr('db', 'h1')] }, { actions: ['replace r/db (spec-changed) lockers='], phases: ['r/api Running Running', 'r/db Pending SpecChanged'] }],
  ['depends-on: no desired provider', { desired: [inst('api', 'h1', [], 'container', ['db'])] }, { actions: [], phases: ['r/api Pending WaitingForDependency'] }],
  ['depends-on: dependents stop before what they depend on', { observed: [ctr('api', 'h1'), ctr('db', 'h1')], serviceDeps: new Map([['r/api', ['db']]]) }, { actions: ['remove ozsvc--r--api (not-desired)'], phases: [] }],
  ['depends-on: the dependency goes once its dependents are gone', { observed: [ctr('db', 'h1')], serviceDeps: new Map([['r/api', ['db']]]) }, { actions: ['remove ozsvc--r--db (not-desired)'], phases: [] }],
  ['services of other types are not run', { desired: [inst('src', 'h1', [], 'source-files')] }, { actions: [], phases: ['r/src Pending NotAContainer'] }],
  ['an invalid dynamic entry fails without touching its container', { invalid: [{ key: 'r/x', realm: 'r', name: 'x', service: 'nope', variety: null, profile: null, message: 'service "nope" is not defined' }], observed: [ctr('x', 'h1')] }, { actions: [], phases: ['r/x Failed InvalidSpec'] }],
];

for (const [name, input, want] of table) {
  t.test(name, async (t) => t.same(summary(run(input)), want));
}

t.test('status records carry what status shows', async (t) => {
  const p = run({ desired: [inst('api', 'h2', ['keys'])], observed: [ctr('api', 'h1')], vaultKeys: new Set(['r:keys']) });
  t.same(p.statuses, [{
    realm: 'r', instance: 'api', service: 'api', variety: null, profile: null, source: 'manifest', specHash: 'h2',
    containerId: 'id-api-h1', lockers: ['keys'], phase: 'Locked', reason: 'WaitingForUnlock',
    message: 'waiting for `ozwald unlock` of r:keys (the running container keeps its previous spec until then)',
  }]);
  const legacy = run({ desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1')], vaultKeys: new Set(['r:keys']), legacyLockers: new Set(['r:keys']) });
  t.equal(legacy.statuses[0]!.message, 'container ozsvc--r--api is running (legacy envelope: vault:r:keys; run `ozwald secrets migrate`)');
  const b = run({ desired: [inst('web', 'h1')], backoff: new Map([['r/web', { until: 5000, reason: 'LaunchFailed', message: 'docker run failed' }]]) });
  t.equal(b.statuses[0]!.message, 'docker run failed; next try at 1970-01-01T00:00:05.000Z');
  const lost = run({ desired: [inst('api', 'h1', ['keys'])], vaultKeys: new Set(['r:keys']), wasRunning: new Set(['r/api']) });
  t.equal(lost.statuses[0]!.message, 'its container was removed and tokens are used up at start; waiting for `ozwald unlock` of r:keys');
  const exited = run({ desired: [inst('api', 'h1', ['keys'])], observed: [ctr('api', 'h1', { running: false, state: 'exited' })], vaultKeys: new Set(['r:keys']) });
  t.equal(exited.statuses[0]!.message, 'its container is exited and tokens are used up at start; waiting for `ozwald unlock` of r:keys', 'an exited container of ours ran, whatever the last status said');
  const dep = run({ desired: [inst('api', 'h1', [], 'container', ['db'])] });
  t.equal(dep.statuses[0]!.message, 'waiting for service db (no instance of it is desired in realm r) to be Running');
  const dep2 = run({ desired: [inst('api', 'h1', [], 'container', ['db']), inst('db', 'h1')] });
  t.equal(dep2.statuses[0]!.message, 'waiting for r/db to be Running');
});

t.test('the planner is pure: same input, same plan; inputs untouched', async (t) => {
  const input: PlanInput = { provisioner: P, desired: [inst('web', 'h2'), inst('api', 'h1', ['k'])], observed: [ctr('web', 'h1'), ctr('gone', 'h1')], unlockKeys: new Set(['r:k']), vaultKeys: new Set(['r:k']), inFlight: new Set(), backoff: new Map(), now: 1 };
  const before = JSON.stringify(input, (_k, v) => (v instanceof Set ? [...v] : v instanceof Map ? [...v] : v));
  t.same(plan(input), plan(input));
  t.equal(JSON.stringify(input, (_k, v) => (v instanceof Set ? [...v] : v instanceof Map ? [...v] : v)), before);
});

t.test('plan warns about every key set twice, naming the key', async (t) => {
  const { envCollisions } = await import('../../src/controller/desired.js');
  const d = inst('api', 'h', ['a', 'b']);
  d.spec.environment = [['PORT', '80'], ['ONLY_ENV', 'x']];
  t.same(envCollisions(d, new Map([['r:a', ['TOKEN', 'PORT']], ['r:b', ['TOKEN', 'B_ONLY']]])), [
    'r/api: key TOKEN of locker b overrides locker a',
    'r/api: environment PORT overrides the key of the same name in locker a',
  ]);
  t.same(envCollisions(d, new Map()), [], 'nothing known, nothing to say');
});
