// Prometheus metrics scraped from a running controller, with exact values.
import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, cli, phaseIs, startController, teardown, waitFor, world, freePort } from '../helpers/harness.js';


const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

t.test('metrics', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys]}
    service-definitions:
      - {name: a, type: container, image: ${IMAGE}}
      - {name: b, type: container, image: ${IMAGE}}
      - {name: s, type: container, image: ${IMAGE}, lockers: [keys]}
    persistent-services:
      - {name: a, service: a}
      - {name: b, service: b}
      - {name: s, service: s}
`);
  const f = join(w.dir, 'k.env');
  await fs.writeFile(f, 'K=value-of-k\n');
  t.equal((await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', f, '--token-stdin'], { input: 'right-token' })).code, 0);
  const port = await freePort();
  const ctl = startController(w, ['--metrics-listen', `127.0.0.1:${port}`]);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'a', 'Running');
  await phaseIs(w, 'b', 'Running');
  t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: 'wrong-token' })).code, 1);
  const scrape = () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const text = await waitFor('metrics settle', async () => {
    const m = await scrape();
    return value(m, 'ozwald_instances{phase="Running"}') === 2 && value(m, 'ozwald_instances{phase="Locked"}') === 1 ? m : undefined;
  });
  t.equal(value(text, 'ozwald_actions_total{kind="create",result="ok"}'), 2, 'two containers created');
  t.equal(value(text, 'ozwald_actions_total{kind="create",result="error"}'), 0);
  t.equal(value(text, 'ozwald_actions_total{kind="remove",result="ok"}'), 0);
  t.equal(value(text, 'ozwald_unlock_keys_total{result="failed"}'), 1, 'the wrong token');
  t.equal(value(text, 'ozwald_unlock_keys_total{result="consumed"}'), 0);
  t.equal(value(text, 'ozwald_docker_up'), 1);
  t.equal(value(text, 'ozwald_redis_up'), 1);
  t.equal(value(text, 'ozwald_leader'), 1);
  t.equal(value(text, 'ozwald_queue_depth'), 0);
  const passes = value(text, 'ozwald_reconcile_passes_total')!;
  t.ok(passes >= 2, `passes counted (${passes})`);
  t.equal(value(text, 'ozwald_reconcile_pass_duration_seconds_count'), passes, 'one duration per pass');
  t.match(text, '# TYPE ozwald_reconcile_pass_duration_seconds histogram');

  t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: 'right-token' })).code, 0);
  const after = await waitFor('the unlock counted', async () => {
    const m = await scrape();
    return value(m, 'ozwald_actions_total{kind="create",result="ok"}') === 3 ? m : undefined;
  });
  t.equal(value(after, 'ozwald_unlock_keys_total{result="consumed"}'), 1);
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  await ctl.stop();
  t.notMatch(w.transcript.join('\n'), 'value-of-k');
  t.notMatch(w.transcript.join('\n'), 'right-token');
});
