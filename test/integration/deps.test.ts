// depends-on on the real engine: a dependent (web, named to sort last, so
// no accidental order passes) is created only once what it depends on runs,
// and is removed before it. The order is read from the engine's event log.
import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, phaseIs, startController, statuses, teardown, waitFor, world, type World } from '../helpers/harness.js';

/** The engine's container events for this provisioner between two times (seconds). */
async function events(w: World, since: number, until: number): Promise<{ action: string; instance: string }[]> {
  const stream = (await w.docker.getEvents({
    since, until,
    filters: { type: ['container'], label: [`ozwald.provisioner=${w.provisioner}`] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((e) => ({ action: e.Action as string, instance: e.Actor.Attributes['ozwald.instance'] as string }));
}

t.test('depends-on orders starts and removals', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const text = (persistent: string) => `realms:
  ${w.realm}:
    service-definitions:
      - {name: db, type: container, image: ${IMAGE}}
      - {name: cache, type: container, image: ${IMAGE}}
      - {name: web, type: container, image: ${IMAGE}, depends-on: [db, cache]}
    persistent-services:
${persistent}`;
  const all = '      - {name: web, service: web}\n      - {name: db, service: db}\n      - {name: cache, service: cache}\n';
  const since = Math.floor(Date.now() / 1000) - 1;
  await fs.writeFile(join(w.manifests, 'm.yaml'), text(all));
  const ctl = startController(w, ['--resync', '60']); // the order must not hang on the resync
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'web', 'Running');
  const started = await events(w, since, Math.ceil(Date.now() / 1000) + 1);
  const at = (action: string, instance: string) => started.findIndex((e) => e.action === action && e.instance === instance);
  t.ok(at('start', 'db') >= 0 && at('start', 'cache') >= 0, 'both dependencies started');
  t.ok(at('create', 'web') > at('start', 'db'), 'web was created after db started');
  t.ok(at('create', 'web') > at('start', 'cache'), 'web was created after cache started');

  // Everything goes: the dependent first, then what it depended on.
  const before = Math.floor(Date.now() / 1000) - 1;
  await fs.writeFile(join(w.manifests, 'm.yaml'), text('      []\n'));
  await waitFor('all removed', async () => Object.keys(await statuses(w)).length === 0
    && (await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } })).length === 0, 30_000);
  const removed = (await events(w, before, Math.ceil(Date.now() / 1000) + 1)).filter((e) => e.action === 'destroy').map((e) => e.instance);
  t.equal(removed[0], 'web', `the dependent went first (${removed.join(', ')})`);
  t.same(removed.slice(1).sort(), ['cache', 'db']);
  await ctl.stop();
});
