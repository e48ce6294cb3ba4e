// docs/grafana-dashboard.json against the metrics a host exports (runtime/metrics.ts): every
// metric a panel or variable queries is one /metrics serves, and every agentbus metric of the host
// (not Node's process defaults) is on some panel. Read from a real host's /metrics on SQLite.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { AgentHost, BaseAgent } from '../index.js';
import { serveHttp } from '../runtime/http.js';
import { pino } from 'pino';

interface Panel {
  title?: string;
  type: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}
const dashboard = JSON.parse(readFileSync('docs/grafana-dashboard.json', 'utf8')) as {
  panels: Panel[];
  templating: { list: Array<{ query?: string | { query?: string } }> };
};

/** Every PromQL expression of the dashboard, with where it is. */
function queries(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel ${JSON.stringify(p.title)}`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q && q.includes('agentbus_')) out.push({ where: 'variable', expr: q });
  }
  return out;
}

/** Metric names in a PromQL expression (identifiers starting agentbus_). */
const metricsIn = (expr: string) => [...expr.matchAll(/\bagentbus_[a-zA-Z0-9_]+/g)].map((m) => m[0]);

class Idle extends BaseAgent {
  static subscriptions = ['grafana.check'];
  handle(): void {}
}

test('every metric the Grafana dashboard queries is exported by a host, and every host metric is on the dashboard', async () => {
  const bus = await createSqliteBus({ path: join(mkdtempSync(join(tmpdir(), 'agentbus-grafana-')), 'bus.db'), logger: pino({ level: 'error' }) });
  const host = new AgentHost({ bus, agents: [Idle], logger: pino({ level: 'error' }), catchUncaught: false });
  await host.start();
  const http = await serveHttp(host, 0);
  let text: string;
  try {
    text = await (await fetch(`${http.url}/metrics`)).text();
  } finally {
    await http.close();
    await host.stop();
    await bus.close();
  }
  // Each exported family with its type; a histogram serves name_bucket, name_sum and name_count.
  const families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const served = new Set<string>();
  for (const [name, type] of families) {
    served.add(name);
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) served.add(name + s);
  }
  assert.ok(served.has('agentbus_events_handled_total'), `the host's metrics were read:\n${text.slice(0, 500)}`);

  const used = new Set<string>();
  const unknown: string[] = [];
  for (const q of queries()) {
    for (const m of metricsIn(q.expr)) {
      used.add(families.has(m) ? m : m.replace(/_(bucket|sum|count)$/, ''));
      if (!served.has(m)) unknown.push(`${q.where}: ${m}`);
    }
  }
  assert.equal(unknown, [], 'queried by the dashboard but not exported');
  const own = [...families.keys()].filter((n) => !/^agentbus_(process|nodejs)_/.test(n));
  assert.equal(own.filter((n) => !used.has(n)), [], 'exported but on no panel');
  assert.ok(queries().length >= 20);
});

test('the dashboard is importable: Prometheus datasource variable, unique panel ids, grid within 24 columns', () => {
  const ids = new Set<number>();
  const walk = (ps: Array<Panel & { id?: number; gridPos?: { x: number; w: number }; datasource?: { uid?: string } }>) => {
    for (const p of ps) {
      assert.ok(p.id !== undefined && !ids.has(p.id), `panel id ${p.id} of ${p.title} unique`);
      ids.add(p.id!);
      assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `${p.title} within the grid`);
      if (p.type !== 'row') assert.is(p.datasource?.uid, '${datasource}', `${p.title} uses the datasource variable`);
      walk((p.panels ?? []) as typeof ps);
    }
  };
  walk(dashboard.panels as Parameters<typeof walk>[0]);
  assert.ok(dashboard.templating.list.some((v) => (v as { type?: string; query?: unknown }).type === 'datasource' && (v as { query?: unknown }).query === 'prometheus'));
});

test.run();
