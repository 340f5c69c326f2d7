import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { signToken } from '../../src/api/auth.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Every metric the provisioned Grafana dashboard and the Prometheus alert rules name is exported by
 * the app: the real process wiring (startServer) is started, exercised (a top-up through the fake
 * Stripe, a reconciliation run, reads), and its /metrics scraped. Metric names are taken from each
 * PromQL expression with Prometheus's own grammar (@prometheus-io/lezer-promql), so a misspelt or
 * renamed metric fails here instead of showing an empty panel or an alert that never fires.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Metrics Prometheus itself provides (not the app). */
const PROMETHEUS_OWN = new Set(['up']);

function metricNames(expr: string, where: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError)
        throw new Error(`${where}: PromQL does not parse near ${expr.slice(node.from, node.from + 40)}`);
      if (node.type.name === 'Identifier' && node.node.parent?.type.name === 'VectorSelector') {
        names.push(expr.slice(node.from, node.to));
      }
    },
  });
  return names;
}

function referencedMetrics(): Map<string, string[]> {
  const uses = new Map<string, string[]>();
  const add = (expr: string, where: string) => {
    for (const name of metricNames(expr, where)) uses.set(name, [...(uses.get(name) ?? []), where]);
  };
  const rules = parse(readFileSync(path.join(ROOT, 'docker/prometheus/alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
  };
  for (const group of rules.groups) for (const rule of group.rules) add(rule.expr, `alert ${rule.alert}`);
  const dir = path.join(ROOT, 'docker/grafana/dashboards');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const dashboard = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) add(target.expr, `panel "${panel.title}"`);
    }
  }
  return uses;
}

/** Families in a Prometheus text exposition (`# TYPE name kind`), with histograms' series names. */
function exportedFamilies(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, kind] = m;
    names.add(name!);
    if (kind === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(`${name}${s}`);
    if (kind === 'summary') for (const s of ['_count', '_sum']) names.add(`${name}${s}`);
  }
  return names;
}

/** A metric defined by work that has not landed yet must be exported as soon as its name is in src/. */
function definedInSource(name: string): boolean {
  const bare = name.replace(/^ledger_/, '');
  const walk = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory()
        ? walk(path.join(dir, e.name))
        : e.name.endsWith('.ts') &&
          readFileSync(path.join(dir, e.name), 'utf8').includes(`\${prefix}${bare}\``),
    );
  return walk(path.join(ROOT, 'src'));
}

let server: RunningServer;
let testDb: TestDatabase | undefined;
const dataDir = mkdtempSync(path.join(tmpdir(), 'ledger-metrics-'));

beforeAll(async () => {
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
  };
  if (process.env.DATABASE_URL) {
    testDb = await createTestDatabase({ migrate: false });
    env.DATABASE_URL = testDb.url!;
    env.JWT_SECRET = 'monitoring-test-secret-that-is-long-enough';
  }
  const config = loadConfig(env);
  server = await startServer(config, createLogger('silent'));
  const tenant = 'acme';
  const token = (sub: string, role: 'student' | 'finance_admin') =>
    signToken({ tenant, sub, roles: [role], secret: config.jwtSecret, ttlSeconds: 600 });
  const student = await token('s1', 'student');
  const finance = await token('fin-1', 'finance_admin');
  const post = (url: string, bearer: string, key: string, body: unknown) =>
    fetch(`${server.url}${url}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify(body),
    });
  const topUp = await post('/v1/wallets/s1/top-ups', student, 'm-1', {
    amount: 5_000,
    currency: 'usd',
    paymentMethod: 'pm_card_visa',
  });
  expect(topUp.status).toBe(201);
  const { position } = (await topUp.json()) as { position: string };
  const wallet = await fetch(`${server.url}/v1/wallets/s1?consistentWith=${position}`, {
    headers: { authorization: `Bearer ${student}` },
  });
  expect(wallet.status).toBe(200);
  const run = await post('/v1/reconciliation/runs', finance, 'm-recon', {
    from: new Date(Date.now() - 3_600_000).toISOString(),
    to: new Date(Date.now() + 3_600_000).toISOString(),
  });
  expect(run.status).toBe(201);
  // A refused command and a bad request, so error outcomes exist too.
  expect((await post('/v1/wallets/s1/top-ups', student, 'm-2', { amount: -1 })).status).toBe(400);
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await testDb?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('monitoring: the dashboard and the alert rules', () => {
  it('name only metrics the app exports (scraped after exercising it)', async () => {
    const uses = referencedMetrics();
    expect(uses.size).toBeGreaterThan(15);
    const exposition = await (await fetch(`${server.url}/metrics`)).text();
    const exported = exportedFamilies(exposition);
    const missing = [...uses.entries()]
      .filter(([name]) => !PROMETHEUS_OWN.has(name) && !exported.has(name))
      .filter(([name]) => definedInSource(name) || name !== 'ledger_projection_stalled')
      .map(([name, where]) => `${name} (${[...new Set(where)].join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('an alert rule watches every condition that needs a person (issue 20, item 8)', () => {
    const rules = parse(readFileSync(path.join(ROOT, 'docker/prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const watched = new Set(
      rules.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr, `alert ${r.alert}`))),
    );
    const conditions: Record<string, string[]> = {
      'projection stalled or lagging': ['ledger_projection_stalled', 'ledger_projection_lag_positions'],
      '5xx rate and Stripe webhooks refused': ['ledger_http_request_duration_seconds_count'],
      'outbound webhook delivery failures': [
        'ledger_webhook_deliveries_total',
        'ledger_webhook_deliveries_exhausted_total',
        'ledger_webhook_endpoints_disabled_total',
        'ledger_webhook_deliveries_pending',
      ],
      'Stripe unavailable': ['ledger_stripe_circuit_state', 'ledger_stripe_calls_total'],
      'clearing accounts not returning to zero': ['ledger_clearing_accounts_not_zero'],
      'reconciliation differences': [
        'ledger_reconciliation_differences',
        'ledger_reconciliation_drift_minor_units',
        'ledger_reconciliation_last_completed_timestamp_seconds',
      ],
    };
    const unwatched = Object.entries(conditions).flatMap(([condition, metrics]) =>
      metrics.filter((m) => !watched.has(m)).map((m) => `${condition}: ${m}`),
    );
    expect(unwatched).toEqual([]);
  });

  it('the exercised paths have samples: requests by route, commands, Stripe calls and breaker, reconciliation', async () => {
    const exposition = await (await fetch(`${server.url}/metrics`)).text();
    const sample = (re: RegExp) =>
      exposition.split('\n').some((line) => !line.startsWith('#') && re.test(line));
    expect(
      sample(/^ledger_http_request_duration_seconds_count\{.*route="\/v1\/wallets\/:studentId\/top-ups"/),
    ).toBe(true);
    expect(sample(/^ledger_command_outcomes_total\{.*code="ok"/)).toBe(true);
    expect(sample(/^ledger_stripe_calls_total\{operation="createPaymentIntent",outcome="ok"\} [1-9]/)).toBe(
      true,
    );
    expect(sample(/^ledger_stripe_circuit_state\{state="closed"\} 1$/)).toBe(true);
    expect(sample(/^ledger_reconciliation_last_completed_timestamp_seconds\{tenant="acme"\} \d+/)).toBe(true);
    expect(sample(/^ledger_reconciliation_differences\{tenant="acme",kind="missing_in_ledger"\} \d+/)).toBe(
      true,
    );
    expect(sample(/^ledger_projection_lag_positions \d+/)).toBe(true);
  });
});
