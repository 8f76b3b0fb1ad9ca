import t from 'tap';
import { Backoff, backoffDelay, BACKOFF_RESET_MS } from '../../src/controller/backoff.js';
import { ManualClock } from '../../src/clock.js';

t.test('10 s doubling to 5 min', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n)), [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  t.equal(backoffDelay(1, 0.1), 11_000, 'jitter adds at most 10%');
});

t.test('failures grow; a stable run resets them', async (t) => {
  const clock = new ManualClock(0);
  const b = new Backoff(() => 0);
  t.equal(b.fail('k', clock.now(), 'LaunchFailed', 'x').until, 10_000);
  clock.advance(10_000);
  t.equal(b.fail('k', clock.now(), 'LaunchFailed', 'x').until, 30_000);
  b.healthy('k', clock.now() + BACKOFF_RESET_MS - 1);
  t.equal(b.view().get('k')?.failures, 2, 'not yet stable');
  b.healthy('k', clock.now() + BACKOFF_RESET_MS);
  t.equal(b.view().has('k'), false, 'reset after 10 min');
});

t.test('the manual clock fires timers on advance, in order, and honours cancel', async (t) => {
  const clock = new ManualClock(100);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('b'), 20);
  clock.setTimeout(() => fired.push('a'), 10);
  const c = clock.setTimeout(() => fired.push('never'), 15);
  c.cancel();
  clock.advance(15);
  t.same(fired, ['a']);
  clock.advance(5);
  t.same(fired, ['a', 'b']);
  t.equal(clock.now(), 120);
});
