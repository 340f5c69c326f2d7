import type { FaultWindow } from './faults.js';
import type { Counter } from './stats.js';

export interface CheckResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
}

export interface SummaryInput {
  header: string;
  t0Ms: number;
  totalMs: number;
  outcomes: Counter;
  outcomesByKind: Array<[string, Counter]>;
  acknowledged: Map<string, number>;
  rejected: Map<string, number>;
  ambiguous: Map<string, number>;
  extras: Array<[string, string | number]>;
  faults: FaultWindow[];
  excused: Counter;
  latency: Array<[string, { count: number; p50Ms: number; p99Ms: number; maxMs: number }]>;
  checks: CheckResult[];
  violationCounts: Counter;
  violationDetails: string[];
  notes: string[];
}

/** Passed = no violation and no failed check; a skipped check is reported, never counted as a pass. */
export function verdict(input: Pick<SummaryInput, 'checks' | 'violationCounts'>): boolean {
  return input.violationCounts.total() === 0 && input.checks.every((c) => c.status !== 'failed');
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const list = (m: Map<string, number>) =>
  [...m.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

/** The one summary a soak prints. */
export function formatSummary(s: SummaryInput): string {
  const rel = (t: number) => `${((t - s.t0Ms) / 1000).toFixed(1)}s`;
  const out: string[] = [];
  const ok = verdict(s);
  out.push('================================ soak summary ================================');
  out.push(s.header);
  out.push(`total time ${(s.totalMs / 1000).toFixed(1)} s`);
  out.push(`requests: ${s.outcomes.total()} attempts`);
  for (const [key, n] of s.outcomes.entries()) out.push(`  ${key.padEnd(44)} ${String(n).padStart(8)}`);
  for (const [kind, c] of s.outcomesByKind) {
    out.push(
      `  by kind ${kind}: ${c
        .entries()
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  }
  out.push(`commands acknowledged: ${sum(s.acknowledged)} (${list(s.acknowledged)})`);
  out.push(`commands rejected (definitive 4xx): ${sum(s.rejected)} (${list(s.rejected)})`);
  out.push(
    `commands ambiguous during the run (resolved at the end by replaying their key): ${sum(s.ambiguous)} (${list(s.ambiguous)})`,
  );
  for (const [k, v] of s.extras) out.push(`${k}: ${v}`);
  out.push(`faults injected: ${s.faults.length}`);
  for (const f of s.faults) {
    out.push(
      `  ${f.kind.padEnd(26)} ${rel(f.startMs)} .. ${f.endMs === null ? 'open' : rel(f.endMs)} (+${f.graceMs / 1000}s grace)  ${f.detail}`,
    );
  }
  out.push(
    `errors excused by fault windows: ${s.excused.total()}${
      s.excused.total()
        ? ` (${s.excused
            .entries()
            .map(([k, n]) => `${k}: ${n}`)
            .join('; ')})`
        : ''
    }`,
  );
  for (const [name, l] of s.latency) {
    out.push(
      `latency ${name.padEnd(9)} n=${l.count} p50 ${ms(l.p50Ms)} p99 ${ms(l.p99Ms)} max ${ms(l.maxMs)}`,
    );
  }
  out.push('checks:');
  for (const c of s.checks) out.push(`  ${c.status.toUpperCase().padEnd(7)} ${c.name}: ${c.detail}`);
  for (const n of s.notes) out.push(`note: ${n}`);
  if (ok) {
    out.push(
      'invariants: ALL HELD (no unexcused 5xx, no missing or doubled effect, model = ledger = rebuild)',
    );
  } else {
    out.push(
      `invariants: VIOLATED (${s.violationCounts.total()}): ${
        s.violationCounts
          .entries()
          .map(([k, n]) => `${k} ${n}`)
          .join(', ') || 'a check failed'
      }`,
    );
    for (const d of s.violationDetails) out.push(`  - ${d}`);
  }
  out.push(`RESULT: ${ok ? 'PASS' : 'FAIL'}`);
  return out.join('\n');
}
