import { describe, expect, it } from 'vitest';
import { planFaults } from '../../soak/chaos.js';
import { excusedBy, FaultLog } from '../../soak/faults.js';
import { labelOf } from '../../soak/http.js';
import { Recorder } from '../../soak/recorder.js';
import { createRng } from '../../soak/rng.js';
import { formatSummary, verdict } from '../../soak/summary.js';

const ok2xx = (s: number) => s >= 200 && s < 300;

function attempt(
  r: Recorder,
  at: number,
  status: number,
  kind: 'command' | 'bad' = 'command',
  code: string | null = null,
) {
  r.attempt({
    kind,
    label: 'POST /v1/bookings',
    startMs: at,
    endMs: at + 10,
    status,
    code,
    accept: kind === 'bad' ? (s) => s >= 400 && s < 500 : ok2xx,
  });
}

describe('fault windows', () => {
  it('excuse overlapping requests, and the grace period after the window closes', () => {
    const log = new FaultLog();
    const w = log.open('app_kill', 'kill -9 app-1', 1_000, 500);
    expect(excusedBy({ startMs: 2_000, endMs: 2_100 }, log.windows)).toBe(w); // still open
    log.close(w, 3_000);
    expect(excusedBy({ startMs: 900, endMs: 1_001 }, log.windows)).toBe(w);
    expect(excusedBy({ startMs: 3_400, endMs: 3_450 }, log.windows)).toBe(w);
    expect(excusedBy({ startMs: 3_501, endMs: 3_600 }, log.windows)).toBeNull();
    expect(excusedBy({ startMs: 500, endMs: 999 }, log.windows)).toBeNull();
    expect(() => log.close(w, 4_000)).toThrow();
  });
});

describe('recorder judgement', () => {
  it('fails a 5xx or network error outside any fault window, excuses one inside', () => {
    const log = new FaultLog();
    const r = new Recorder(log, createRng(1), 0);
    attempt(r, 100, 201);
    attempt(r, 200, 503, 'command', 'unavailable');
    const w = log.open('postgres_restart', 'restart', 1_000, 1_000);
    attempt(r, 1_500, 503, 'command', 'unavailable');
    attempt(r, 1_600, 0, 'command', 'econnrefused');
    log.close(w, 2_000);
    attempt(r, 2_500, 500);
    attempt(r, 3_100, 0, 'command', 'econnreset');
    expect(r.violationCounts.entries()).toEqual([
      ['unexcused_5xx', 1],
      ['unexcused_network_error', 1],
    ]);
    expect(r.excused.total()).toBe(3);
    expect(r.outcomes.get('5xx 503 unavailable')).toBe(2);
    expect(r.ok).toBe(false);
  });

  it('fails a bad request that was accepted, and an unexpected status; 429 is always acceptable', () => {
    const r = new Recorder(new FaultLog(), createRng(1), 0);
    attempt(r, 0, 400, 'bad', 'validation_failed');
    attempt(r, 0, 201, 'bad');
    attempt(r, 0, 404, 'command', 'not_found');
    attempt(r, 0, 429, 'command', 'rate_limited');
    expect(r.violationCounts.entries()).toEqual([
      ['bad_request_accepted', 1],
      ['unexpected_status', 1],
    ]);
  });

  it('measures latency of answered requests only', () => {
    const r = new Recorder(new FaultLog(), createRng(1), 0);
    attempt(r, 0, 200);
    attempt(r, 0, 0, 'command', 'timeout');
    expect(r.latencyAll.count).toBe(1);
    expect(r.latencyCommands.count).toBe(1);
  });
});

describe('summary', () => {
  it('passes only with no violation and no failed check; skipped checks are shown', () => {
    const log = new FaultLog();
    const r = new Recorder(log, createRng(1), 0);
    attempt(r, 0, 201);
    const base = {
      header: 'stack postgres',
      t0Ms: 0,
      totalMs: 1_000,
      outcomes: r.outcomes,
      outcomesByKind: [...r.outcomesByKind.entries()],
      acknowledged: new Map([['book', 1]]),
      rejected: new Map<string, number>(),
      ambiguous: new Map<string, number>(),
      extras: [],
      faults: log.windows,
      excused: r.excused,
      latency: [['all', r.latencyAll.summary()] as [string, ReturnType<typeof r.latencyAll.summary>]],
      violationCounts: r.violationCounts,
      violationDetails: r.violationDetails,
      notes: [],
    };
    const skipped = {
      ...base,
      checks: [{ name: 'verifier', status: 'skipped' as const, detail: 'not built' }],
    };
    expect(verdict(skipped)).toBe(true);
    expect(formatSummary(skipped)).toContain('SKIPPED verifier: not built');
    expect(formatSummary(skipped)).toMatch(/RESULT: PASS$/);
    const failed = { ...base, checks: [{ name: 'verifier', status: 'failed' as const, detail: 'exit 1' }] };
    expect(verdict(failed)).toBe(false);
    expect(formatSummary(failed)).toMatch(/RESULT: FAIL$/);
    r.violation('double_effect', 'top-up x credited twice');
    expect(verdict(skipped)).toBe(false);
    expect(formatSummary(skipped)).toContain('double_effect: top-up x credited twice');
  });
});

describe('fault plan and labels', () => {
  it('spreads faults over the middle of the workload, cycling kinds', () => {
    const plan = planFaults(100_000, ['app_kill', 'redis_stop'], 5_000);
    expect(plan.length).toBeGreaterThan(1);
    expect(plan[0]!.atMs).toBe(10_000);
    expect(plan.every((p) => p.atMs >= 10_000 && p.atMs < 75_000)).toBe(true);
    expect(plan.map((p) => p.kind).slice(0, 3)).toEqual(['app_kill', 'redis_stop', 'app_kill']);
    expect(planFaults(1_000, ['app_kill'], 60_000)).toHaveLength(1);
  });

  it('labels routes with ids elided', () => {
    expect(labelOf('POST', '/v1/bookings/bk1x2/refunds')).toBe('POST /v1/bookings/{id}/refunds');
    expect(labelOf('GET', '/v1/wallets/s3?consistentWith=10')).toBe('GET /v1/wallets/{id}');
  });
});
