import t from 'tap';
import { Coalescer } from '../../src/controller/coalescer.js';

const tick = () => new Promise((r) => setImmediate(r));

t.test('never two passes at once; triggers while running collapse into one more', async (t) => {
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  let release: (() => void) | undefined;
  const c = new Coalescer(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    await new Promise<void>((r) => (release = r));
    running--;
  }, () => {});
  c.trigger();
  await tick();
  t.equal(runs, 1, 'a trigger while idle starts a pass');
  for (let i = 0; i < 10; i++) c.trigger();
  t.equal(runs, 1, 'triggers while running wait');
  release!();
  await tick();
  await tick();
  t.equal(runs, 2, 'ten triggers made exactly one more pass');
  release!();
  await c.idle();
  t.equal(runs, 2, 'and no more');
  t.equal(maxRunning, 1);
  t.equal(c.busy, false);
});

t.test('a failing pass is reported and does not stop later ones', async (t) => {
  const errors: unknown[] = [];
  let n = 0;
  const c = new Coalescer(async () => {
    n++;
    if (n === 1) throw new Error('boom');
  }, (e) => errors.push(e));
  c.trigger();
  await c.idle();
  c.trigger();
  await c.idle();
  t.equal(n, 2);
  t.same(errors.map((e) => (e as Error).message), ['boom']);
});

t.test('a trigger during the last moments of a pass is not lost', async (t) => {
  let n = 0;
  let c: Coalescer;
  c = new Coalescer(async () => {
    n++;
    if (n === 1) c.trigger(); // arrives while this pass is still running
  }, () => {});
  c.trigger();
  await c.idle();
  t.equal(n, 2);
});

t.test('passes start at least minGap apart', async (t) => {
  const { ManualClock } = await import('../../src/clock.js');
  const clock = new ManualClock(1000);
  const starts: number[] = [];
  const c = new Coalescer(async () => {
    starts.push(clock.now());
  }, () => {}, undefined, 100, () => clock.now(), (ms) => new Promise<void>((r) => clock.setTimeout(r, ms)));
  c.trigger();
  await tick();
  t.same(starts, [1000], 'the first pass starts at once');
  c.trigger();
  await tick();
  t.same(starts, [1000], 'the next waits for the gap');
  clock.advance(99);
  await tick();
  t.same(starts, [1000]);
  clock.advance(1);
  await tick();
  t.same(starts, [1000, 1100], 'and starts when it has passed');
});
