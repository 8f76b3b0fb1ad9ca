// The benchmark script's smoke mode, so it cannot rot: every figure comes out
// as a number, and the no-op pass makes exactly one Docker call.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, requireEnv } from '../helpers/harness.js';

t.test('hack/bench.mjs --smoke', async (t) => {
  const { redisUrl } = requireEnv();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [join(ROOT, 'hack/bench.mjs'), '--smoke'], { cwd: ROOT, env: { ...process.env, OZWALD_REDIS_URL: redisUrl }, timeout: 240_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
  t.equal(code, 0, stderr);
  const rows = stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| section'));
  for (const what of ['raw engine API', 'ozwald (controller start', 'file write → new container Running', 'manifest save → first Docker call', 'planner alone', 'full pass against', 'Docker API calls per pass', 'unlock → container Running', 'scrypt KDF', 'docker run (CLI)', 'controller RSS, idle']) {
    const row = rows.find((r) => r.includes(what));
    t.ok(row, `a row for "${what}"`);
    t.match(row ?? '', /\| \d+(\.\d+)? (ms|MiB|calls|writes) \|/, `"${what}" has a number`);
  }
  const calls = rows.find((r) => r.includes('Docker API calls per pass'))!;
  t.match(calls, '| 1.0 calls |', 'one Docker call per no-op pass: the list');
});
