import { excusedBy, type FaultLog } from './faults.js';
import type { Rng } from './rng.js';
import { Counter, LatencyReservoir, outcomeKey } from './stats.js';

/** What a request was for: commands and reads are the real workload, `bad` ones must be refused. */
export type RequestKind = 'command' | 'read' | 'bad' | 'setup' | 'final';

export interface AttemptRecord {
  kind: RequestKind;
  /** Short route label, e.g. "POST /v1/bookings". */
  label: string;
  startMs: number;
  endMs: number;
  /** 0 for a network failure (connection refused/reset, timeout). */
  status: number;
  /** Problem `code` from a problem+json body, or the network error kind. */
  code: string | null;
  /** Statuses that are a correct answer for this request (besides 429, always acceptable). */
  accept: (status: number) => boolean;
}

export type ViolationCategory =
  | 'unexcused_5xx'
  | 'unexcused_network_error'
  | 'bad_request_accepted'
  | 'unexpected_status'
  | 'idempotency_replay_differs'
  | 'missing_event'
  | 'double_effect'
  | 'balance_mismatch'
  | 'invariant_broken'
  | 'verifier_failed'
  | 'rebuild_differs'
  | 'unresolved_command'
  | 'process_exit';

const DETAIL_LIMIT = 60;

/**
 * Collects every HTTP attempt (counts by outcome, latency samples) and every violation. It judges each
 * attempt when it ends, against the fault windows known at that moment: a window that opens later cannot
 * have caused an earlier error, and a still-open window excuses anything overlapping it.
 */
export class Recorder {
  readonly outcomes = new Counter();
  readonly outcomesByKind = new Map<RequestKind, Counter>();
  readonly latencyAll: LatencyReservoir;
  readonly latencyCommands: LatencyReservoir;
  readonly latencyReads: LatencyReservoir;
  readonly violationCounts = new Counter();
  readonly violationDetails: string[] = [];
  readonly excused = new Counter();
  readonly notes: string[] = [];

  constructor(
    private readonly faults: FaultLog,
    rng: Rng,
    private readonly t0Ms: number,
    capacity = 200_000,
  ) {
    this.latencyAll = new LatencyReservoir(capacity, rng);
    this.latencyCommands = new LatencyReservoir(capacity, rng);
    this.latencyReads = new LatencyReservoir(capacity, rng);
  }

  attempt(a: AttemptRecord): void {
    const key = outcomeKey(a.status, a.code);
    this.outcomes.add(key);
    let byKind = this.outcomesByKind.get(a.kind);
    if (!byKind) {
      byKind = new Counter();
      this.outcomesByKind.set(a.kind, byKind);
    }
    byKind.add(key);
    const latencyMs = a.endMs - a.startMs;
    if (a.status !== 0) {
      this.latencyAll.add(latencyMs);
      if (a.kind === 'command') this.latencyCommands.add(latencyMs);
      if (a.kind === 'read') this.latencyReads.add(latencyMs);
    }
    const failed = a.status === 0 || a.status >= 500;
    if (failed) {
      const window = excusedBy(a, this.faults.windows);
      if (window) {
        this.excused.add(`${key} during ${window.kind}`);
        return;
      }
      this.violation(
        a.status === 0 ? 'unexcused_network_error' : 'unexcused_5xx',
        `${a.label} -> ${key} at t+${this.rel(a.startMs)}`,
      );
      return;
    }
    if (a.kind === 'bad' && a.status < 400) {
      this.violation('bad_request_accepted', `${a.label} -> ${a.status}`);
      return;
    }
    if (a.status !== 429 && !a.accept(a.status)) {
      this.violation('unexpected_status', `${a.label} -> ${key} at t+${this.rel(a.startMs)}`);
    }
  }

  violation(category: ViolationCategory, detail: string): void {
    this.violationCounts.add(category);
    if (this.violationDetails.length < DETAIL_LIMIT) this.violationDetails.push(`${category}: ${detail}`);
  }

  note(text: string): void {
    if (this.notes.length < 200) this.notes.push(text);
  }

  get ok(): boolean {
    return this.violationCounts.total() === 0;
  }

  private rel(ms: number): string {
    return `${((ms - this.t0Ms) / 1000).toFixed(1)}s`;
  }
}
