// Launch paths beyond the happy one: several lockers, shared lockers, a
// failing docker run (env-file still removed, old container restored).
import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, cli, container, execEnv, filesUnder, phaseIs, redisDump, startController, statuses, teardown, waitFor, world, type World } from '../helpers/harness.js';

const CANARY_A = 'canary-launch-A-9z';
const CANARY_B = 'canary-launch-B-8y';
const TOKEN_A = 'tok-launch-aaaa';
const TOKEN_B = 'tok-launch-bbbb';

async function seal(w: World, locker: string, payload: Record<string, string>, token: string) {
  const file = join(w.dir, `${locker}.json`);
  await fs.writeFile(file, JSON.stringify(payload));
  const r = await cli(w, ['secrets', 'set', w.realm, locker, '--file', file, '--token-stdin'], { input: token });
  await fs.rm(file);
  if (r.code !== 0) throw new Error(r.stderr);
}

t.test('lockers: all-or-nothing take, shared tokens, failed launches', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const write = (webEntrypoint = '') => fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault:
      lockers: [a, b]
    service-definitions:
      - name: both
        type: container
        image: ${IMAGE}
        lockers: [a, b]
      - name: shared
        type: container
        image: ${IMAGE}
        lockers: [a]
      - name: web
        type: container
        image: ${IMAGE}
${webEntrypoint}    persistent-services:
      - {name: both, service: both}
      - {name: shared-1, service: shared}
      - {name: shared-2, service: shared}
      - {name: web, service: web}
`);
  await write();
  await seal(w, 'a', { SHARED_KEY: 'from-a', A_ONLY: CANARY_A }, TOKEN_A);
  await seal(w, 'b', { SHARED_KEY: 'from-b', B_ONLY: CANARY_B }, TOKEN_B);
  const ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'web', 'Running');

  await t.test('one token opens every instance that waits for that locker; a second locker still waits', async (t) => {
    t.equal((await cli(w, ['unlock', w.realm, 'a', '--token-stdin'], { input: TOKEN_A })).code, 0);
    await phaseIs(w, 'shared-1', 'Running');
    await phaseIs(w, 'shared-2', 'Running');
    const both = (await statuses(w))['both']!;
    t.equal(both.phase, 'Locked');
    t.same(both.lockers, ['b'], 'waits only for b');
    t.notOk(await container(w, 'both'));
    t.equal(await w.redis.exists(`unlock:${w.realm}:a`), 1, 'the token for a is left for the instance that still waits for b');
    const ttl = await w.redis.ttl(`unlock:${w.realm}:a`);
    t.ok(ttl > 0 && ttl <= 60, `with its original expiry (${ttl}s left)`);
  });

  await t.test('a token delivered before its partner is not stranded', async (t) => {
    // Without a controller in the way, deliver a only: the controller must not take it alone.
    await ctl.stop();
    t.equal((await cli(w, ['unlock', w.realm, 'a', '--token-stdin', '--ttl', '120'], { input: TOKEN_A })).code, 0);
    const ttl = await w.redis.ttl(`unlock:${w.realm}:a`);
    t.ok(ttl > 100 && ttl <= 120, `TTL set from --ttl (${ttl})`);
    const again = startController(w);
    t.teardown(() => again.proc.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 2500));
    t.equal(await w.redis.exists(`unlock:${w.realm}:a`), 1, 'a is still waiting for b');
    t.equal((await statuses(w))['both']!.phase, 'Locked');
    t.equal((await cli(w, ['unlock', w.realm, 'b', '--token-stdin', '--wait'], { input: TOKEN_B })).code, 0);
    const s = await phaseIs(w, 'both', 'Running');
    const env = await execEnv(w, s.containerId!);
    t.match(env, /^SHARED_KEY=from-b$/m, 'a later locker wins on a shared key');
    t.match(env, new RegExp(`^A_ONLY=${CANARY_A}$`, 'm'));
    t.match(env, new RegExp(`^B_ONLY=${CANARY_B}$`, 'm'));
    t.equal(await w.redis.exists(`unlock:${w.realm}:a`, `unlock:${w.realm}:b`), 0, 'both keys taken together');

    await t.test('the other order, with a gap: b now, a later', async (t) => {
      const c = (await container(w, 'both'))!;
      await w.docker.getContainer(c.Id).remove({ force: true });
      const locked = await phaseIs(w, 'both', 'Locked', 'WaitingForUnlock');
      t.same(locked.lockers, ['a', 'b'], 'a removed locker service waits for its tokens again');
      t.equal((await cli(w, ['unlock', w.realm, 'b', '--token-stdin'], { input: TOKEN_B })).code, 0);
      await waitFor('b noticed', async () => JSON.stringify((await statuses(w))['both']?.lockers) === '["a"]');
      await new Promise((r) => setTimeout(r, 1500));
      t.equal(await w.redis.exists(`unlock:${w.realm}:b`), 1, 'b waits for a, untaken');
      const u = await cli(w, ['unlock', w.realm, 'a', '--token-stdin', '--wait'], { input: TOKEN_A });
      t.equal(u.code, 0, u.stdout);
      t.match(u.stdout, `${w.realm}:both: started: Running`);
      t.equal(await w.redis.exists(`unlock:${w.realm}:a`, `unlock:${w.realm}:b`), 0);
    });

    await t.test('a failed replacement puts the old container back and leaves no env-file', async (t) => {
      const old = (await container(w, 'web'))!;
      await write('        entrypoint: /does-not-exist\n');
      const s = await phaseIs(w, 'web', 'BackOff', 'LaunchFailed');
      t.match(s.message, /docker run for .*:web failed: .*does-not-exist/);
      t.match(s.message, /next try at \d{4}-/);
      const now = (await container(w, 'web'))!;
      t.equal(now.Id, old.Id, 'the previous container is back under its name');
      t.equal(now.State, 'running');
      const leftovers = await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`, 'ozwald.instance=web'] } });
      t.equal(leftovers.length, 1, 'the failed container was removed');
      t.same(await filesUnder(w.runtimeDir), [], 'no env-file after a failed launch');
      // The fix is tried at once, not after the failed spec's back-off.
      const fixedAt = Date.now();
      await write();
      await phaseIs(w, 'web', 'Running', 'Running');
      t.ok(Date.now() - fixedAt < 8000, 'a fixed manifest does not wait out the back-off');
    });

    await t.test('a container that was restarted by hand is still replaced', async (t) => {
      // Some engines refuse to rename a running container that was stopped and
      // started again; the controller falls back to stopping it first.
      await again.stop();
      const c = (await container(w, 'web'))!;
      await w.docker.getContainer(c.Id).stop({ t: 1 });
      await w.docker.getContainer(c.Id).start();
      await write('        command: [sh, -c, "echo changed; exec /bin/ozwald-demo"]\n');
      const third = startController(w);
      t.teardown(() => third.proc.kill('SIGKILL'));
      const s = await waitFor('web replaced', async () => {
        const st = (await statuses(w))['web'];
        return st?.phase === 'Running' && st.containerId !== c.Id ? st : undefined;
      });
      t.match(third.output(), /could not rename the running container; stopping it first|"kind":"replace"/, 'went through a replacement');
      t.equal((await container(w, 'web'))!.Id, s.containerId, 'the new container carries the name');
      const all = await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`, 'ozwald.instance=web'] } });
      t.equal(all.length, 1, 'one web container left');
      await third.stop();
      const st = await cli(w, ['status']);
      t.match(st.stdout, /^controller: stopped at /m, 'status says the controller is not running');
      await write();
    });

    const text = w.transcript.join('\n') + (await redisDump(w.redis));
    for (const needle of [CANARY_A, CANARY_B, TOKEN_A, TOKEN_B]) t.notMatch(text, needle, 'no secret or token in output or Redis');
  });
});
