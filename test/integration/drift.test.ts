// Drift and outages on the real engine: containers killed or removed behind
// the controller's back, a crash loop, a foreign container holding our name,
// Redis going away, dockerd restarting; plus `down` and `status --watch`.
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CLI, IMAGE, ROOT, cli, container, phaseIs, startController, statuses, teardown, waitFor, world, freePort } from '../helpers/harness.js';


t.test('drift repair, crash loops and name conflicts', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys]}
    service-definitions:
      - {name: web, type: container, image: ${IMAGE}}
      - {name: sec, type: container, image: ${IMAGE}, lockers: [keys]}
      - {name: crash, type: container, image: ${IMAGE}, command: [sh, -c, "echo starting; echo API_KEY=sk-abcdefghijklmnopqrstuvwxyz0123; exit 3"]}
      - {name: taken, type: container, image: ${IMAGE}}
    persistent-services:
      - {name: web, service: web}
      - {name: sec, service: sec}
      - {name: crash, service: crash}
      - {name: taken, service: taken}
`);
  // A container that is not ours holds the name `taken` would get.
  const foreign = await w.docker.createContainer({ Image: IMAGE, name: `ozsvc--${w.realm}--taken` });
  await foreign.start();
  t.teardown(() => foreign.remove({ force: true }).catch(() => {}));
  const f = join(w.dir, 'k.env');
  await fs.writeFile(f, 'K=v1234\n');
  t.equal((await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', f, '--token-stdin'], { input: 'tok-drift' })).code, 0);
  const ctl = startController(w, ['--resync', '60']); // repairs below must come from events, not the resync
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'web', 'Running');
  t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: 'tok-drift' })).code, 0);

  await t.test('a killed container is recreated at once', async (t) => {
    const before = (await container(w, 'web'))!;
    await w.docker.getContainer(before.Id).kill();
    const after = await waitFor('web recreated', async () => {
      const c = await container(w, 'web');
      return c && c.Id !== before.Id && c.State === 'running' ? c : undefined;
    }, 15_000);
    t.ok(after);
  });

  await t.test('a removed container is recreated', async (t) => {
    const before = (await container(w, 'web'))!;
    await w.docker.getContainer(before.Id).remove({ force: true });
    await waitFor('web recreated', async () => {
      const c = await container(w, 'web');
      return c && c.Id !== before.Id && c.State === 'running';
    }, 15_000);
    t.pass('recreated');
  });

  await t.test('a locker service that loses its container says it needs its tokens again', async (t) => {
    const c = (await container(w, 'sec'))!;
    await w.docker.getContainer(c.Id).remove({ force: true });
    const s = await phaseIs(w, 'sec', 'Locked', 'WaitingForUnlock');
    t.equal(s.message, `its container was removed and tokens are used up at start; waiting for \`ozwald unlock\` of ${w.realm}:keys`);
  });

  await t.test('a container that exits at once: BackOff with its exit code, masked output, growing delay', async (t) => {
    const first = await phaseIs(w, 'crash', 'BackOff', 'CrashLoop');
    t.match(first.message, /exited with code 3; last output: starting \| API_KEY=\[masked\]/);
    t.notMatch(first.message, 'sk-abcdef', 'credential-looking output is masked');
    const at = (msg: string) => Date.parse(/next try at (\S+)$/.exec(msg)![1]!);
    // Each retry that fails again doubles the wait (10 s, 20 s, 40 s … up to 5 min, +≤10% jitter).
    const delay = (s: { message: string; since: string }) => at(s.message) - Date.parse(s.since);
    const d1 = delay(first);
    t.ok([10_000, 20_000, 40_000].some((d) => d1 > d * 0.9 && d1 <= d * 1.15), `a back-off step (${d1} ms)`);
    const second = await waitFor('the next back-off', async () => {
      const s = (await statuses(w))['crash'];
      return s?.phase === 'BackOff' && at(s.message) !== at(first.message) ? s : undefined;
    }, 60_000);
    const d2 = delay(second);
    t.ok(d2 > d1 * 1.7 && d2 < d1 * 2.4, `then about twice as long (${d1} → ${d2} ms)`);
  });

  await t.test('a foreign container with our name: NameConflict, and it is left alone', async (t) => {
    const s = await phaseIs(w, 'taken', 'BackOff', 'NameConflict');
    t.match(s.message, `a container named ozsvc--${w.realm}--taken exists that ozwald does not manage`);
    const info = await foreign.inspect();
    t.equal(info.State.Running, true, 'the foreign container still runs');
    t.equal(info.Name, `/ozsvc--${w.realm}--taken`);
  });

  await t.test('status --watch redraws when something changes', async (t) => {
    const p = spawn(process.execPath, [CLI, 'status', '--watch'], { env: w.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let outText = '';
    p.stdout.on('data', (d) => (outText += d));
    await waitFor('a first frame', async () => /web\s+web\s+Running/.test(outText));
    const frames = () => (outText.match(/provisioner it-/g) ?? []).length;
    const n = frames();
    const m = join(w.manifests, 'm.yaml');
    await fs.writeFile(m, (await fs.readFile(m, 'utf8')).replace('    persistent-services:\n', `    persistent-services:\n      - {name: web2, service: web}\n`));
    await waitFor('another frame, with the new instance', async () => frames() > n && /web2\s+web\s+/.test(outText), 15_000);
    p.kill('SIGINT');
    t.equal(await new Promise((r) => p.on('close', r)), 0, 'Ctrl-C ends it cleanly');
  });

  await t.test('down refuses while the controller runs, then removes everything', async (t) => {
    const refused = await cli(w, ['down', '--yes']);
    t.equal(refused.code, 1);
    t.match(refused.stderr, `OZW_CONFLICT: a controller is running provisioner "${w.provisioner}"`);
    t.match(refused.stderr, '  fix: stop that `ozwald run`');
    await ctl.stop();
    const dry = await cli(w, ['down']);
    t.match(dry.stdout, `would remove ozsvc--${w.realm}--web`);
    t.ok((await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } })).length > 0, 'a dry run removes nothing');
    const r = await cli(w, ['down', '--yes']);
    t.equal(r.code, 0, r.stderr);
    t.same(await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } }), [], 'nothing of ours left');
    t.equal((await foreign.inspect()).State.Running, true, 'the foreign container untouched');
    t.equal(await w.redis.exists(`ozwald:${w.provisioner}:status`), 0);
    t.equal(await w.redis.exists(`vault:${w.realm}:keys`), 1, 'lockers stay');
  });
});

t.test('Redis going away: containers untouched, the loop recovers', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const port = await freePort();
  const startRedis = () => spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  let rs = startRedis();
  t.teardown(() => rs.kill('SIGKILL'));
  await waitFor('private redis', async () => execFileSync('redis-cli', ['-p', String(port), 'ping']).toString().includes('PONG'));
  w.env.OZWALD_REDIS_URL = `redis://127.0.0.1:${port}/0`;
  const { Redis } = await import('ioredis');
  w.redis.disconnect();
  w.redis = new Redis(w.env.OZWALD_REDIS_URL, { lazyConnect: true, retryStrategy: () => 200, maxRetriesPerRequest: null });
  w.redis.on('error', () => {});
  await w.redis.connect();
  const text = (names: string[]) => `realms:\n  ${w.realm}:\n    service-definitions:\n${names.map((n) => `      - {name: ${n}, type: container, image: ${IMAGE}}\n`).join('')}    persistent-services:\n${names.map((n) => `      - {name: ${n}, service: ${n}}\n`).join('')}`;
  await fs.writeFile(join(w.manifests, 'm.yaml'), text(['a', 'b']));
  const ctl = startController(w, ['--resync', '2']);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'a', 'Running');
  await phaseIs(w, 'b', 'Running');
  const ids = async () => (await w.docker.listContainers({ filters: { label: [`ozwald.provisioner=${w.provisioner}`] } })).map((c) => c.Id).sort();
  const before = await ids();
  rs.kill('SIGKILL');
  await new Promise((r) => rs.once('close', r));
  // A manifest change while Redis is away must not be applied half-way or prune anything.
  await fs.writeFile(join(w.manifests, 'm.yaml'), text(['a']));
  await new Promise((r) => setTimeout(r, 6000));
  t.same(await ids(), before, 'nothing stopped or pruned while Redis was away');
  rs = startRedis();
  await waitFor('redis back', async () => execFileSync('redis-cli', ['-p', String(port), 'ping']).toString().includes('PONG'));
  await waitFor('the loop recovers and applies the change', async () => {
    const st = await statuses(w);
    return st['a']?.phase === 'Running' && !st['b'] && (await ids()).length === 1;
  }, 40_000);
  t.match(ctl.output(), /lost Redis; containers keep running/, 'the outage is logged');
  t.match(ctl.output(), /Redis reachable again/, 'and the recovery');
  await ctl.stop();
});

t.test('a status hash deleted behind the controller is written again by the next resync', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n      - {name: a, type: container, image: ${IMAGE}}\n    persistent-services:\n      - {name: a, service: a}\n`);
  const ctl = startController(w, ['--resync', '1']);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  const first = await phaseIs(w, 'a', 'Running');
  // What a Redis restarted without its data, or a failover to a lagging replica, looks like.
  await w.redis.del(`ozwald:${w.provisioner}:status`);
  const again = await phaseIs(w, 'a', 'Running');
  t.equal(again.containerId, first.containerId, 'the same container, only its record rewritten');
  t.equal(again.since, first.since, 'the time of the last change is kept');
  await ctl.stop();
});

t.test('dockerd restarting: everything comes back and events flow again', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n      - {name: a, type: container, image: ${IMAGE}}\n    persistent-services:\n      - {name: a, service: a}\n`);
  const ctl = startController(w, ['--resync', '60']);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  const first = await phaseIs(w, 'a', 'Running');
  execFileSync('bash', [join(ROOT, 'hack/restart-dockerd.sh')], { stdio: 'ignore' });
  // The engine stopped the container (restart policy no); the controller sees the
  // stream end, reconnects, resyncs and recreates it.
  const back = await waitFor('a running again after the restart', async () => {
    const c = await container(w, 'a');
    return c && c.State === 'running' && c.Id !== first.containerId ? c : undefined;
  }, 60_000);
  t.ok(back);
  // `a` has a back-off history from the restart; a fresh instance shows the
  // events stream works again: killed, it is recreated at once.
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n      - {name: a, type: container, image: ${IMAGE}}\n      - {name: c, type: container, image: ${IMAGE}}\n    persistent-services:\n      - {name: a, service: a}\n      - {name: c, service: c}\n`);
  const cs = await phaseIs(w, 'c', 'Running');
  await w.docker.getContainer(cs.containerId!).kill();
  await waitFor('recreated from an event, long before the 60 s resync', async () => {
    const n = await container(w, 'c');
    return n && n.Id !== cs.containerId && n.State === 'running';
  }, 15_000);
  t.match(ctl.output(), /docker events stream failed; reconnecting/, 'the stream loss was noticed');
  await ctl.stop();
});

t.test('a secret-bearing container that crashes: its output, which may quote its secrets, stays out of status', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const SECRET = `crash-canary-${w.realm}`;
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys]}
    service-definitions:
      - {name: leaky, type: container, image: ${IMAGE}, lockers: [keys], entrypoint: [sh, -c], command: ['echo "boot url=postgres://u:$DB_PASS@db pw $DB_PASS"; exit 3']}
    persistent-services:
      - {name: leaky, service: leaky}
`);
  const f = join(w.dir, 'k.env');
  await fs.writeFile(f, `DB_PASS=${SECRET}\n`);
  t.equal((await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', f, '--token-stdin'], { input: 'tok-leaky' })).code, 0);
  const ctl = startController(w, ['--resync', '1']);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'leaky', 'Locked');
  const first = await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: 'tok-leaky' });
  t.equal(first.code, 1);
  t.match(first.stdout, /: (started, then stopped: Locked \(WaitingForUnlock\)|not started: BackOff)/, 'unlock --wait says it did not stay up');
  await waitFor('it ran, exited, and its token is used up', async () => (await statuses(w))['leaky']?.message.includes('tokens are used up'));
  // A second unlock: the exited container is replaced, and the crash is recorded.
  await cli(w, ['unlock', w.realm, 'keys', '--token-stdin'], { input: 'tok-leaky' });
  const s = await phaseIs(w, 'leaky', 'BackOff', 'CrashLoop');
  t.match(s.message, 'exited with code 3; its output is not shown here because the container holds secrets');
  await ctl.stop();
  const everywhere = [JSON.stringify(await statuses(w)), (await cli(w, ['status', '--json'])).stdout, ctl.output(), ...w.transcript].join('\n');
  t.notMatch(everywhere, SECRET, 'the secret is in no status, CLI output or log line');
});
