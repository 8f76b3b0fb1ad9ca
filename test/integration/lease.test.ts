// One active controller per provisioner: a second one stands by, and takes
// over only when the first is gone.
import t from 'tap';
import { promises as fs, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, cli, phaseIs, startController, statuses, teardown, waitFor, world } from '../helpers/harness.js';

t.test('a second controller with the same name stands by, then takes over', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const realm = (names: string[]) => `realms:\n  ${w.realm}:\n    service-definitions:\n${names.map((n) => `      - {name: ${n}, type: container, image: ${IMAGE}}\n`).join('')}    persistent-services:\n${names.map((n) => `      - {name: ${n}, service: ${n}}\n`).join('')}`;
  await fs.writeFile(join(w.manifests, 'm.yaml'), realm(['a', 'b']));
  const first = startController(w);
  t.teardown(() => first.proc.kill('SIGKILL'));
  await phaseIs(w, 'a', 'Running');
  await phaseIs(w, 'b', 'Running');
  const holder = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!).holder;
  t.match(holder, new RegExp(`:${first.proc.pid}:`), 'the first controller holds the lease');

  // The second one is pointed at different manifests: if it acted, it would prune a and b.
  const other = join(w.dir, 'other');
  mkdirSync(other);
  await fs.writeFile(join(other, 'm.yaml'), realm(['c']));
  const env = { ...w.env };
  w.env.OZWALD_MANIFESTS = other;
  const second = startController(w);
  w.env = env;
  t.teardown(() => second.proc.kill('SIGKILL'));
  await waitFor('the second to stand by', async () => /another controller runs this provisioner; standing by/.test(second.output()));
  await new Promise((r) => setTimeout(r, 4000));
  const s = await statuses(w);
  t.same(Object.keys(s).sort(), ['a', 'b'], 'the standby changed nothing');
  t.equal(s['a']!.phase, 'Running');

  const killedAt = Date.now();
  first.proc.kill('SIGKILL');
  await waitFor('the standby to take over and act', async () => {
    const st = await statuses(w);
    return st['c']?.phase === 'Running' && !st['a'] ? st : undefined;
  }, 40_000);
  const took = Date.now() - killedAt;
  t.ok(took < 25_000, `took over within the lease time plus a retry (${took} ms)`);
  t.match(second.output(), /holding the lease; active/);
  await second.stop();
  t.equal(await w.redis.exists(`ozwald:${w.provisioner}:lease`), 0, 'a clean stop releases the lease');
});

t.test('two provisioner names on one Redis and one engine never touch each other', async (t) => {
  const a = await world();
  const b = await world();
  t.teardown(() => teardown(a));
  t.teardown(() => teardown(b));
  b.realm = a.realm; // the same realm name on both: only the provisioner label tells them apart
  const realm = (w: typeof a, names: string[]) => `realms:\n  ${w.realm}:\n    service-definitions:\n      - {name: web, type: container, image: ${IMAGE}}\n    persistent-services:\n${names.map((n) => `      - {name: ${n}, service: web}\n`).join('')}`;
  await fs.writeFile(join(a.manifests, 'm.yaml'), realm(a, ['shared', 'only-a']));
  await fs.writeFile(join(b.manifests, 'm.yaml'), realm(b, ['shared', 'only-b']));
  const ca = startController(a);
  t.teardown(() => ca.proc.kill('SIGKILL'));
  await phaseIs(a, 'shared', 'Running');
  await phaseIs(a, 'only-a', 'Running');
  const cb = startController(b);
  t.teardown(() => cb.proc.kill('SIGKILL'));
  await phaseIs(b, 'only-b', 'Running');
  // Container names carry realm and instance, not the provisioner (DESIGN.md):
  // b cannot have its own "shared" while a runs one, and must leave a's alone.
  const conflict = await phaseIs(b, 'shared', 'BackOff', 'NameConflict');
  t.match(conflict.message, `ozwald does not manage (no ozwald labels for provisioner ${b.provisioner})`);
  const mine = async (w: typeof a) => (await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } })).map((c) => c.Labels['ozwald.instance']).sort();
  t.same(await mine(a), ['only-a', 'shared'], 'a keeps its containers');
  t.same(await mine(b), ['only-b'], 'b runs only its own');
  t.same(Object.keys(await statuses(a)).sort(), ['only-a', 'shared'], 'status records stay apart');

  // b giving up "shared" and a's lease going away touch nothing of the other.
  await fs.writeFile(join(b.manifests, 'm.yaml'), realm(b, ['only-b']));
  await waitFor('b forgets shared', async () => !(await statuses(b))['shared']);
  await cb.stop();
  const down = await cli(b, ['down', '--yes']);
  t.equal(down.code, 0, down.stderr);
  t.same(await mine(b), [], 'down removed b\'s containers');
  t.same(await mine(a), ['only-a', 'shared'], 'and none of a\'s');
  t.equal((await statuses(a))['shared']!.phase, 'Running');
  await ca.stop();
});
