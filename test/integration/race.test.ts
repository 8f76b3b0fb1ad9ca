// A pass that lists containers while a launch is under way, and plans only
// after that launch has ended, saw the container half-made (absent or
// "created"). Found by the converge benchmark: under load a healthy new
// container was taken for a crashed one, recreated and counted against
// back-off. The controller runs in this process so the list can be held.
import t from 'tap';
import { promises as fs, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Controller } from '../../src/controller/controller.js';
import { Runtime, type LaunchSpec, type ObservedContainer } from '../../src/runtime/docker.js';
import { connectRedis, ensureConnected } from '../../src/state/store.js';
import { EnvFileDir } from '../../src/vault/envfile.js';
import { createLogger } from '../../src/log.js';
import { IMAGE, container, phaseIs, teardown, waitFor, world } from '../helpers/harness.js';

class HeldListRuntime extends Runtime {
  runs: string[] = [];
  /** The instance whose launch a pass will look at half-way. */
  holdFor: string | null = null;
  /** Starts a pass (the test points it at the controller). */
  kick: () => void = () => {};
  heldLists = 0;
  private launch: { listed: () => void; ended: Promise<void> } | null = null;

  // For the held instance: start a pass, let its list see the world before
  // the container exists, then launch; that list returns once the launch is over.
  override async run(spec: LaunchSpec, envFile: string, secretValues: string[] = [], timeoutMs?: number): Promise<string> {
    this.runs.push(spec.instance);
    if (spec.instance !== this.holdFor) return super.run(spec, envFile, secretValues, timeoutMs);
    this.holdFor = null;
    let end!: () => void, listed!: () => void;
    const wasListed = new Promise<void>((r) => (listed = r));
    this.launch = { listed, ended: new Promise((r) => (end = r)) };
    this.kick();
    await wasListed;
    try {
      return await super.run(spec, envFile, secretValues, timeoutMs);
    } finally {
      // Let the queue mark the launch done before the held list comes back.
      setTimeout(end, 50);
    }
  }

  override async list(): Promise<ObservedContainer[]> {
    const seen = await super.list();
    const launch = this.launch;
    if (launch) {
      this.launch = null;
      this.heldLists++;
      launch.listed();
      await launch.ended;
    }
    return seen;
  }
}

t.test('a launch that ends while a pass looks is not taken for a crash', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const manifest = (persistent: string[]) => fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    service-definitions:
      - {name: one, type: container, image: ${IMAGE}}
      - {name: two, type: container, image: ${IMAGE}}
    persistent-services:
${persistent.map((n) => `      - {name: ${n}, service: ${n}}\n`).join('')}`);
  await manifest(['one']);
  const redis = connectRedis(w.env.OZWALD_REDIS_URL!, { forever: true });
  await ensureConnected(redis, w.env.OZWALD_REDIS_URL!);
  const rt = new HeldListRuntime(w.provisioner, { stopTimeout: 1 });
  const lines: string[] = [];
  const ctl = new Controller({
    provisioner: w.provisioner, manifests: w.manifests, redisUrl: w.env.OZWALD_REDIS_URL!, redis, runtime: rt,
    logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }),
    envDir: new EnvFileDir(join(mkdtempSync(join(tmpdir(), 'oz-race-')), w.provisioner)), resyncMs: 60_000, settleMs: 50, minPassGapMs: 0,
  });
  t.teardown(async () => { await ctl.stop(); redis.disconnect(); });
  // A pass during the launch, as a docker event or an unrelated action would cause.
  rt.kick = () => ctl.trigger('test: a pass during the launch');
  await ctl.start();
  await phaseIs(w, 'one', 'Running');

  // Add "two"; while its docker run is under way, a pass lists, and that
  // list comes back only once the launch has ended.
  rt.holdFor = 'two';
  await manifest(['one', 'two']);
  await waitFor('the held list', async () => rt.heldLists > 0);
  const st = await phaseIs(w, 'two', 'Running');
  const c = await container(w, 'two');
  // Give the passes the launch triggered time to (wrongly) act.
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(rt.runs.filter((i) => i === 'two').length, 1, 'two was launched once');
  t.equal((await container(w, 'two'))?.Id, c?.Id, 'the same container still runs');
  t.equal((await phaseIs(w, 'two', 'Running')).containerId, st.containerId);
  t.notOk(lines.some((l) => l.includes('stopped on its own') || l.includes('OZW_LAUNCH_FAILED')), 'no crash recorded, no failed launch');
});
