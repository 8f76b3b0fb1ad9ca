// One active controller per provisioner: a second one stands by, and takes
// over only when the first is gone.
import t from 'tap';
import { promises as fs, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, phaseIs, startController, statuses, teardown, waitFor, world } from '../helpers/harness.js';

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
