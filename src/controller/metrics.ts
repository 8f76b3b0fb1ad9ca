// Prometheus metrics of one controller (its own registry: two controllers in
// one process, as in tests, never share counters).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { OzwError } from '../errors.js';

export class Metrics {
  readonly registry = new Registry();
  readonly passes = new Counter({ name: 'ozwald_reconcile_passes_total', help: 'Reconcile passes run.', registers: [this.registry] });
  readonly passDuration = new Histogram({
    name: 'ozwald_reconcile_pass_duration_seconds', help: 'Time one reconcile pass takes (plan and enqueue; launches run after).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'ozwald_queue_depth', help: 'Actions waiting or running in the work queue.', registers: [this.registry] });
  readonly actions = new Counter({ name: 'ozwald_actions_total', help: 'Actions applied, by kind (create, replace, remove) and result (ok, error).', labelNames: ['kind', 'result'], registers: [this.registry] });
  readonly instances = new Gauge({ name: 'ozwald_instances', help: 'Desired instances by phase.', labelNames: ['phase'], registers: [this.registry] });
  readonly unlocks = new Counter({ name: 'ozwald_unlock_keys_total', help: 'Lockers opened with an unlock key, by result (consumed: opened; failed: wrong token or unreadable).', labelNames: ['result'], registers: [this.registry] });
  readonly dockerUp = new Gauge({ name: 'ozwald_docker_up', help: '1 when the last Docker call succeeded.', registers: [this.registry] });
  readonly redisUp = new Gauge({ name: 'ozwald_redis_up', help: '1 when the last Redis call succeeded.', registers: [this.registry] });
  readonly leader = new Gauge({ name: 'ozwald_leader', help: '1 while this controller holds its provisioner\'s lease.', registers: [this.registry] });

  constructor() {
    // Zero series exist from the start, so a scrape shows them before any event.
    for (const kind of ['create', 'replace', 'remove']) for (const result of ['ok', 'error']) this.actions.inc({ kind, result }, 0);
    for (const result of ['consumed', 'failed']) this.unlocks.inc({ result }, 0);
  }

  setPhases(counts: Record<string, number>): void {
    for (const phase of ['Pending', 'Locked', 'Starting', 'Running', 'BackOff', 'Failed', 'Stopping']) this.instances.set({ phase }, counts[phase] ?? 0);
  }
}

/** Serves GET /metrics on host:port. */
export async function serveMetrics(m: Metrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    m.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new OzwError('OZW_USAGE', `--metrics-listen ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}
