#!/usr/bin/env node
// Benchmarks against the real dockerd and Redis that hack/up.sh --test starts.
// Every figure is reported with the baseline measured in the same run, and as
// a ratio to it (absolute times drift on shared machines; ratios hold).
//   node hack/bench.mjs [--smoke] [--out BENCHMARKS.md] [--only converge,replace,…] [--sizes 10,50] [--cpu-prof DIR]
// --smoke: tiny sizes, one run each, seconds in all (the test suite runs it so it cannot rot).
import { execFile as execFileCb } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Controller } from '../dist/controller/controller.js';
import { plan } from '../dist/controller/planner.js';
import { Runtime } from '../dist/runtime/docker.js';
import { connectRedis, ensureConnected } from '../dist/state/store.js';
import { EnvFileDir } from '../dist/vault/envfile.js';
import { seal, open } from '../dist/vault/envelope.js';
import { silentLogger } from '../dist/log.js';

const execFile = promisify(execFileCb);
const args = process.argv.slice(2);
const SMOKE = args.includes('--smoke');
const OUT = args.includes('--out') ? args[args.indexOf('--out') + 1] : null;
const IMAGE = 'ozwald-demo:latest';
const REDIS = process.env.OZWALD_REDIS_URL ?? process.env.OZWALD_TEST_REDIS_URL;
if (!process.env.DOCKER_HOST || !REDIS) {
  console.error('bench: needs DOCKER_HOST and OZWALD_REDIS_URL; run it through `make bench` (or eval "$(bash hack/up.sh --test)")');
  process.exit(1);
}
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const SIZES = SMOKE ? [3] : args.includes('--sizes') ? args[args.indexOf('--sizes') + 1].split(',').map(Number) : [10, 50, 100];
const RUNS = SMOKE ? 1 : 3;
const CONCURRENCY = 4;
const CPU_PROF = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1] : null;

// docker-compose is the baseline, not the subject: give it a deadline, and
// let a compose failure cost its figure, not the whole run.
async function compose(argsList) {
  return execFile('docker-compose', argsList, { maxBuffer: 16 << 20, timeout: 180_000 });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const runtime = new Runtime('bench-cleanup');
const docker = runtime.docker;
const rows = [];
const report = (section, what, value, unit, baseline, ratio, goal, command) => rows.push({ section, what, value, unit, baseline, ratio, goal, command });

async function pool(items, n, fn) {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => {
    while (queue.length) await fn(queue.shift());
  }));
}

async function removeByLabel(label) {
  const list = await docker.listContainers({ all: true, filters: { label: [label] } });
  await pool(list, 8, (c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {}));
}

function manifest(realm, n, extra = {}) {
  let s = `realms:\n  ${realm}:\n    service-definitions:\n`;
  for (let i = 0; i < n; i++) s += `      - {name: s${i}, type: container, image: ${IMAGE}, environment: {N: "${extra[i] ?? i}"}}\n`;
  s += '    persistent-services:\n';
  for (let i = 0; i < n; i++) s += `      - {name: s${i}, service: s${i}}\n`;
  return s;
}

async function startController(prov, dir, opts = {}) {
  const redis = connectRedis(REDIS, { forever: true });
  await ensureConnected(redis, REDIS);
  const rt = new Runtime(prov, { stopTimeout: 1 });
  const ctl = new Controller({
    provisioner: prov, manifests: dir, redisUrl: REDIS, redis, runtime: rt, logger: silentLogger,
    envDir: new EnvFileDir(join(mkdtempSync(join(tmpdir(), 'oz-bench-run-')), prov)), resyncMs: 60_000, concurrency: CONCURRENCY, ...opts,
  });
  await ctl.start();
  return { ctl, redis, rt, async stop() { await ctl.stop(); redis.disconnect(); } };
}

// Polls the status hash every 20 ms: fine enough for the latency figures.
async function waitStatuses(redis, prov, pred, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const all = Object.values(await redis.hgetall(`ozwald:${prov}:status`)).map((v) => JSON.parse(v));
    if (pred(all)) return all;
    await sleep(20);
  }
  throw new Error(`bench: timed out waiting on ${prov}`);
}

// For the converge, which runs in the controller's process and lasts
// seconds: a cheaper poll (no JSON parse, every 50 ms, under 1% of the figure).
async function waitAllRunning(redis, prov, n, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const vals = await redis.hvals(`ozwald:${prov}:status`);
    if (vals.length === n && vals.every((v) => v.includes('"phase":"Running"'))) return;
    await sleep(50);
  }
  throw new Error(`bench: timed out waiting on ${prov}`);
}

// 1. Converge from empty: ozwald vs the raw engine API, vs the same launches
// through the `docker run` CLI (what DESIGN.md makes every launch go
// through, so the floor for us), and vs docker-compose. The subjects take
// turns going first, so no one always meets a dockerd still busy with the
// previous round's removals.
async function converge() {
  const hasCompose = await execFile('docker-compose', ['version', '--short'], { timeout: 20_000 }).then((r) => r.stdout.trim(), () => null);
  for (const n of SIZES) {
    const raw = [], cli = [], oz = [], comp = [], ozCpu = [];
    for (let r = 0; r < RUNS; r++) {
      const tag = randomBytes(3).toString('hex');
      const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
      const subjects = [
        async () => {
          const t0 = now();
          await pool([...Array(n).keys()], CONCURRENCY, async (i) => {
            const c = await docker.createContainer({ Image: IMAGE, name: `bench-raw-${tag}-${i}`, Env: [`N=${i}`], Labels: { bench: tag } });
            await c.start();
          });
          raw.push(now() - t0);
          await removeByLabel(`bench=${tag}`);
        },
        async () => {
          const t0 = now();
          await pool([...Array(n).keys()], CONCURRENCY, (i) =>
            execFile('docker', ['run', '-d', '--name', `bench-cli-${tag}-${i}`, '-e', `N=${i}`, '--label', `benchcli=${tag}`, IMAGE]));
          cli.push(now() - t0);
          await removeByLabel(`benchcli=${tag}`);
        },
        async () => {
          const prov = `bench-${tag}`;
          writeFileSync(join(dir, 'm.yaml'), manifest(`b${tag}`, n));
          const profiling = CPU_PROF && r === 0 && n === Math.max(...SIZES) ? await startProfile() : null;
          const cpu0 = process.cpuUsage();
          const t0 = now();
          const c = await startController(prov, dir);
          await waitAllRunning(c.redis, prov, n);
          oz.push(now() - t0);
          const cpu = process.cpuUsage(cpu0);
          ozCpu.push((cpu.user + cpu.system) / 1000);
          if (profiling) await profiling.stop(join(CPU_PROF, `converge-${n}.cpuprofile`));
          await c.stop();
          await removeByLabel(`ozwald.provisioner=${prov}`);
        },
      ];
      if (hasCompose) subjects.push(async () => {
        const cf = join(dir, 'compose.yml');
        let y = 'version: "2.4"\nservices:\n';
        for (let i = 0; i < n; i++) y += `  s${i}:\n    image: ${IMAGE}\n    environment: {N: "${i}"}\n    network_mode: none\n`;
        writeFileSync(cf, y);
        const t0 = now();
        const ok = await compose(['-p', `bench${tag}`, '-f', cf, 'up', '-d']).then(() => true, (e) => (process.stderr.write(`bench: docker-compose up failed (${e.killed ? 'killed at the 180 s deadline' : `exit ${e.code}`}): ${String(e.stderr ?? '').trim().split('\n').slice(-2).join(' / ')}\n`), false));
        if (ok) comp.push(now() - t0);
        await compose(['-p', `bench${tag}`, '-f', cf, 'down', '-t', '1']).catch(() => {});
        await removeByLabel(`com.docker.compose.project=bench${tag}`);
      });
      for (let k = 0; k < subjects.length; k++) await subjects[(k + r) % subjects.length]();
    }
    report('converge', `${n} services, raw engine API (create+start, ${CONCURRENCY} at once)`, median(raw), 'ms', null, null, 'baseline', `dockerode createContainer+start, spread ${spread(raw)} ms`);
    report('converge', `${n} services, raw \`docker run -d\` CLI (${CONCURRENCY} at once)`, median(cli), 'ms', median(raw), median(cli) / median(raw), 'floor under DESIGN.md', `execFile docker run, spread ${spread(cli)} ms`);
    report('converge', `${n} services, ozwald (controller start → all Running)`, median(oz), 'ms', median(raw), median(oz) / median(raw), '≤ 1.15× raw', `ozwald run, spread ${spread(oz)} ms`);
    report('converge', `${n} services, ozwald against the \`docker run\` CLI floor`, median(oz), 'ms', median(cli), median(oz) / median(cli), '≤ 1.15× floor', 'same runs as the two rows above');
    report('converge', `${n} services, ozwald controller CPU time`, median(ozCpu), 'ms', median(oz), median(ozCpu) / median(oz), 'share of wall', `process.cpuUsage, ${(median(ozCpu) / n).toFixed(1)} ms per service`);
    if (hasCompose && comp.length) report('converge', `${n} services, docker-compose ${hasCompose} up -d`, median(comp), 'ms', median(raw), median(comp) / median(raw), 'ozwald faster', `docker-compose up -d, spread ${spread(comp)} ms`);
  }
  return hasCompose;
}

// --cpu-prof DIR: a V8 CPU profile of the controller (it runs in this
// process) over the largest converge, and its top functions by self time.
async function startProfile() {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (m, p) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await post('Profiler.stop');
      session.disconnect();
      mkdirSync(CPU_PROF, { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      process.stderr.write(`bench: CPU profile in ${file}\n${summariseProfile(profile)}\n`);
    },
  };
}

function summariseProfile(profile) {
  const dt = new Map();
  for (let i = 0; i < profile.samples.length; i++) dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const self = new Map();
  let total = 0, idle = 0;
  for (const node of profile.nodes) {
    const us = dt.get(node.id) ?? 0;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') { idle += us; continue; }
    const where = url.includes('/dist/') ? `ozwald ${url.slice(url.indexOf('/dist/') + 1)}` : url.includes('node_modules/') ? url.slice(url.lastIndexOf('node_modules/') + 13).split('/')[0] : url ? url.replace(/^node:/, 'node:') : '(native)';
    const key = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 15);
  return [`busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled; top self time:`,
    ...top.map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(7)} ms  ${(100 * us / busy).toFixed(1).padStart(4)}%  ${k}`)].join('\n');
}

// 2. Replace one of N after a manifest edit; and 4a. manifest save → first Docker call.
async function replaceOne(hasCompose) {
  const n = SIZES[SIZES.length - 1];
  const tag = randomBytes(3).toString('hex');
  const prov = `bench-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
  writeFileSync(join(dir, 'm.yaml'), manifest(`b${tag}`, n));
  const c = await startController(prov, dir, { settleMs: 50 });
  await waitStatuses(c.redis, prov, (all) => all.length === n && all.every((s) => s.phase === 'Running'));
  let firstCall = null;
  const dial = c.rt.docker.modem.dial.bind(c.rt.docker.modem);
  c.rt.docker.modem.dial = (o, cb) => {
    firstCall ??= now();
    return dial(o, cb);
  };
  const times = [], reaction = [];
  for (let r = 0; r < RUNS; r++) {
    const before = (await c.redis.hget(`ozwald:${prov}:status`, `b${tag}/s1`)) ?? '';
    const hashBefore = JSON.parse(before).specHash;
    firstCall = null;
    const t0 = now();
    writeFileSync(join(dir, 'm.yaml'), manifest(`b${tag}`, n, { 1: `edit-${r}` }));
    await waitStatuses(c.redis, prov, (all) => { const s = all.find((x) => x.instance === 's1'); return s && s.phase === 'Running' && s.specHash !== hashBefore; });
    times.push(now() - t0);
    reaction.push(firstCall - t0);
  }
  await c.stop();
  await removeByLabel(`ozwald.provisioner=${prov}`);
  let composeMs = null;
  if (hasCompose) {
    const cf = join(dir, 'compose.yml');
    const y = (edit) => { let s = 'version: "2.4"\nservices:\n'; for (let i = 0; i < n; i++) s += `  s${i}:\n    image: ${IMAGE}\n    environment: {N: "${i === 1 ? edit : i}"}\n    network_mode: none\n`; return s; };
    writeFileSync(cf, y('1'));
    const ct = [];
    try {
      await compose(['-p', `bench${tag}`, '-f', cf, 'up', '-d']);
      for (let r = 0; r < RUNS; r++) {
        writeFileSync(cf, y(`edit-${r}`));
        const t0 = now();
        await compose(['-p', `bench${tag}`, '-f', cf, 'up', '-d']);
        ct.push(now() - t0);
      }
    } catch (e) {
      process.stderr.write(`bench: docker-compose failed: ${e.message.split('\n')[0]}\n`);
    }
    await compose(['-p', `bench${tag}`, '-f', cf, 'down', '-t', '1']).catch(() => {});
    await removeByLabel(`com.docker.compose.project=bench${tag}`);
    composeMs = ct.length ? median(ct) : null;
  }
  report('replace', `1 of ${n} services, compose up -d after the edit`, composeMs ?? NaN, 'ms', null, null, 'baseline', 'docker-compose up -d');
  report('replace', `1 of ${n} services, ozwald: file write → new container Running`, median(times), 'ms', composeMs, composeMs ? median(times) / composeMs : null, 'faster than compose', `watch + plan + replace, spread ${spread(times)} ms`);
  report('latency', 'manifest save → first Docker call', median(reaction), 'ms', 300, median(reaction) / 300, 'settle window (300 ms in run; 50 ms here)', 'settleMs=50');
}

// 3. The planner alone; and a full pass against real containers.
function syntheticPlan(n) {
  const desired = [], observed = [];
  for (let i = 0; i < n; i++) {
    desired.push({ realm: 'r', name: `s${i}`, service: `s${i}`, variety: null, profile: null, source: 'manifest', key: `r/s${i}`, type: 'container', hash: `h${i}`, dependsOn: [],
      spec: { image: IMAGE, command: null, entrypoint: null, environment: [['N', String(i)]], lockers: [], volumes: [], networks: [], ports: [] } });
    observed.push({ id: `c${i}`, name: `ozsvc--r--s${i}`, realm: 'r', instance: `s${i}`, service: `s${i}`, provisioner: 'p', specHash: `h${i}`, running: true, state: 'running', status: 'Up' });
  }
  return { provisioner: 'p', desired, observed, unlockKeys: new Set(), vaultKeys: new Set(), inFlight: new Set(), backoff: new Map(), now: Date.now() };
}
function plannerBench() {
  const t = {};
  for (const n of SMOKE ? [100, 1000] : [1000, 10_000]) {
    const input = syntheticPlan(n);
    for (let i = 0; i < 3; i++) plan(input); // warm up
    const xs = [];
    for (let i = 0; i < (SMOKE ? 3 : 20); i++) { const t0 = now(); const p = plan(input); xs.push(now() - t0); if (p.actions.length) throw new Error('bench: no-op plan had actions'); }
    t[n] = median(xs);
  }
  const [small, big] = Object.keys(t).map(Number);
  report('no-op pass', `planner alone, ${small} instances`, t[small], 'ms', 50, t[small] / 50, '≤ 50 ms at 1,000', 'plan() on matching synthetic state, median');
  report('no-op pass', `planner alone, ${big} instances`, t[big], 'ms', t[small], t[big] / t[small], `≈ ${big / small}× (linear)`, 'same, 10× the instances');
}
async function fullPass() {
  const n = SIZES[SIZES.length - 1];
  const tag = randomBytes(3).toString('hex');
  const prov = `bench-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
  writeFileSync(join(dir, 'm.yaml'), manifest(`b${tag}`, n));
  const c = await startController(prov, dir);
  await waitStatuses(c.redis, prov, (all) => all.length === n && all.every((s) => s.phase === 'Running'));
  await sleep(500);
  let dockerCalls = 0;
  const dial = c.rt.docker.modem.dial.bind(c.rt.docker.modem);
  c.rt.docker.modem.dial = (o, cb) => { dockerCalls++; return dial(o, cb); };
  let redisWrites = 0;
  const origWrite = c.redis.stream?.write?.bind(c.redis.stream);
  if (origWrite) c.redis.stream.write = (...a) => { redisWrites++; return origWrite(...a); };
  const m = c.ctl['o'].metrics;
  const passes = async () => (await m.registry.getSingleMetricAsString('ozwald_reconcile_passes_total')).match(/ (\d+)$/m)[1] * 1;
  // Finished passes: the duration histogram counts a pass when it ends.
  const finished = async () => (await m.registry.getSingleMetricAsString('ozwald_reconcile_pass_duration_seconds')).match(/_count(?:\{[^}]*\})? (\d+)$/m)[1] * 1;
  const p0 = await passes();
  const durations = [];
  const k = SMOKE ? 3 : 20;
  let cpuUs = 0;
  for (let i = 0; i < k; i++) {
    // Past the controller's least gap between passes (100 ms), so the figure
    // is the pass itself, not the wait that keeps bursts of triggers apart.
    await sleep(150);
    const before = await finished();
    const cpu0 = process.cpuUsage();
    const t0 = now();
    c.ctl.trigger('bench');
    while ((await finished()) === before) await sleep(0);
    durations.push(now() - t0);
    const cu = process.cpuUsage(cpu0);
    cpuUs += cu.user + cu.system;
  }
  const cpu = { user: cpuUs, system: 0 };
  const done = (await passes()) - p0;
  report('no-op pass', `full pass against ${n} running containers (Docker list + Redis + planner)`, median(durations), 'ms', null, null, 'wall time, median', `trigger → pass done, spread ${spread(durations)} ms`);
  report('no-op pass', 'CPU time per full pass', (cpu.user + cpu.system) / 1000 / done, 'ms', null, null, '', 'process.cpuUsage over the passes');
  report('no-op pass', 'Docker API calls per pass', dockerCalls / done, 'calls', 1, dockerCalls / done, '1 (one list)', 'counted at docker-modem dial');
  report('no-op pass', 'Redis writes to the socket per pass (round trips, pipelines count once)', origWrite ? redisWrites / done : NaN, 'writes', null, null, 'O(1), not per instance', 'counted at the connection socket');
  await c.stop();
  await removeByLabel(`ozwald.provisioner=${prov}`);
}

// 4b. unlock → Running, broken down.
async function unlockLatency() {
  const tag = randomBytes(3).toString('hex');
  const prov = `bench-${tag}`;
  const realm = `b${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
  writeFileSync(join(dir, 'm.yaml'), `realms:\n  ${realm}:\n    vault: {lockers: [keys]}\n    service-definitions:\n      - {name: api, type: container, image: ${IMAGE}, lockers: [keys]}\n    persistent-services:\n      - {name: api, service: api}\n`);
  const c = await startController(prov, dir);
  const blob = await seal(realm, 'keys', 'bench-token', { API_KEY: 'bench-secret-value' });
  await c.redis.set(`vault:${realm}:keys`, blob);
  await c.redis.publish(`ozwald:${prov}:wake`, 'sealed');
  const kdf = [], envfile = [], run = [], total = [];
  const dirE = new EnvFileDir(join(mkdtempSync(join(tmpdir(), 'oz-bench-env-')), 'p'));
  const origRun = c.rt.run.bind(c.rt);
  let runMs = 0;
  c.rt.run = async (...a) => { const t0 = now(); try { return await origRun(...a); } finally { runMs = now() - t0; } };
  for (let r = 0; r < RUNS; r++) {
    await waitStatuses(c.redis, prov, (all) => all.some((s) => s.instance === 'api' && s.phase === 'Locked' && s.reason === 'WaitingForUnlock'));
    let t0 = now();
    await open(realm, 'keys', 'bench-token', blob);
    kdf.push(now() - t0);
    t0 = now();
    await dirE.with([['API_KEY', 'bench-secret-value']], async () => {});
    envfile.push(now() - t0);
    t0 = now();
    await c.redis.set(`unlock:${realm}:keys`, 'bench-token', 'EX', 60);
    await c.redis.publish(`ozwald:${prov}:wake`, 'bench');
    await waitStatuses(c.redis, prov, (all) => all.some((s) => s.instance === 'api' && s.phase === 'Running'));
    total.push(now() - t0);
    run.push(runMs);
    if (r < RUNS - 1) {
      await removeByLabel(`ozwald.provisioner=${prov}`);
      await c.redis.publish(`ozwald:${prov}:wake`, 'removed');
    }
  }
  report('latency', 'unlock → container Running (end to end)', median(total), 'ms', null, null, '', `SET unlock key + wake; spread ${spread(total)} ms`);
  report('latency', '  of which scrypt KDF + AES-GCM decrypt', median(kdf), 'ms', median(total), median(kdf) / median(total), 'share', 'open() of a default-parameter envelope');
  report('latency', '  of which env-file write + remove', median(envfile), 'ms', median(total), median(envfile) / median(total), 'share', 'EnvFileDir.with');
  report('latency', '  of which docker run (CLI)', median(run), 'ms', median(total), median(run) / median(total), 'share', 'execFile docker run -d');
  await c.stop();
  await removeByLabel(`ozwald.provisioner=${prov}`);
}

// 5. Controller RSS, idle, with 1,000 desired instances (Locked: no containers needed) vs none.
async function memory() {
  const n = SMOKE ? 50 : 1000;
  const rss = async (count) => {
    const tag = randomBytes(3).toString('hex');
    const realm = `b${tag}`;
    const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
    let s = `realms:\n  ${realm}:\n    vault: {lockers: [keys]}\n    service-definitions:\n      - {name: api, type: container, image: ${IMAGE}, lockers: [keys]}\n    persistent-services:\n`;
    for (let i = 0; i < count; i++) s += `      - {name: api${i}, service: api}\n`;
    if (count === 0) s = `realms:\n  ${realm}: {}\n`;
    writeFileSync(join(dir, 'm.yaml'), s);
    const { spawn } = await import('node:child_process');
    const p = spawn(process.execPath, ['dist/cli/main.js', '--manifests', dir, '--provisioner', `bench-${tag}`, 'run', '--log-level', 'warn'], { env: { ...process.env, OZWALD_REDIS_URL: REDIS }, stdio: 'ignore' });
    const redis = connectRedis(REDIS);
    await ensureConnected(redis, REDIS);
    await waitStatuses(redis, `bench-${tag}`, (all) => all.length === count, 120_000).catch(() => {});
    await sleep(SMOKE ? 1000 : 5000);
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))[1]);
    p.kill('SIGTERM');
    await new Promise((r) => p.on('close', r));
    await redis.del(`ozwald:bench-${tag}:status`, `ozwald:bench-${tag}:controller`);
    redis.disconnect();
    return kb / 1024;
  };
  const base = await rss(0);
  const full = await rss(n);
  report('memory', `controller RSS, idle, 0 desired instances`, base, 'MiB', null, null, 'baseline', 'ozwald run, VmRSS after settling');
  report('memory', `controller RSS, idle, ${n} desired instances`, full, 'MiB', base, full / base, '', 'same, with Locked instances (no containers)');
}

const t0 = Date.now();
const step = async (name, fn) => {
  if (ONLY && !ONLY.includes(name.split(' ')[0])) return undefined;
  const s = Date.now();
  const r = await fn();
  process.stderr.write(`bench: ${name} took ${((Date.now() - s) / 1000).toFixed(1)} s\n`);
  return r;
};
const hasCompose = await step('converge', converge);
await step('replace', () => replaceOne(hasCompose));
await step('planner', async () => plannerBench());
await step('full pass', fullPass);
await step('unlock', unlockLatency);
await step('memory', memory);

const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const lines = [
  '| section | what | value | baseline | ratio | goal | how |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.section} | ${r.what} | ${fmt(r.value)} ${r.unit} | ${r.baseline === null ? '' : `${fmt(r.baseline)} ${r.unit}`} | ${r.ratio === null ? '' : `${fmt(r.ratio, 2)}×`} | ${r.goal} | ${r.command} |`),
];
const table = lines.join('\n');
console.log(table);
console.log(`\nbench: ${rows.length} figures in ${((Date.now() - t0) / 1000).toFixed(0)} s${SMOKE ? ' (smoke mode)' : ''}`);
if (OUT) {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Docker ${(await execFile('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim()}, Redis ${(await execFile('redis-server', ['--version'])).stdout.split(' ')[2]}`;
  const head = existsSync(OUT) ? readFileSync(OUT, 'utf8').split('<!-- results -->')[0] : '';
  writeFileSync(OUT, `${head}<!-- results -->\n\nRun on ${new Date().toISOString().slice(0, 10)}: ${machine}; median of ${RUNS} run(s) each.\n\n${table}\n`);
}
process.exit(0);
