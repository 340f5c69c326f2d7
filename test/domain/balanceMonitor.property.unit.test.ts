import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BalanceCondition,
  type BalanceMonitorEvent,
  type BalanceMonitorState,
  balanceMonitorDecider,
  conditionHolds,
  type MonitoredBalance,
} from '../../src/domain/balanceMonitor.js';
import { fold } from '../../src/domain/index.js';

/**
 * Edge-triggered monitors over random balance sequences: the triggers equal the false -> true
 * transitions of the condition (starting from false: a monitor created while true fires once), the
 * recoveries the true -> false ones, and evaluating any position again (a replay, a rebuild, a crash
 * between append and checkpoint) changes nothing.
 */
const actor = { id: 'fin', role: 'finance_admin' };
const AT = '2026-12-02T10:00:00.000Z';

function created(condition: BalanceCondition, currency: string | null = 'usd'): BalanceMonitorState {
  const [event] = balanceMonitorDecider.decide(
    {
      type: 'CreateBalanceMonitor',
      monitorId: 'bm_1',
      account: 'student:stu_1:wallet',
      currency,
      condition,
      description: null,
      actor,
      at: AT,
    },
    balanceMonitorDecider.initialState(),
  );
  return balanceMonitorDecider.evolve(balanceMonitorDecider.initialState(), event!);
}

function evaluate(state: BalanceMonitorState, position: number, balance: MonitoredBalance, currency = 'usd') {
  const events = balanceMonitorDecider.decide(
    {
      type: 'EvaluateBalanceMonitor',
      monitorId: 'bm_1',
      currency,
      position: String(position),
      balance,
      causedBy: `event-${position}`,
      at: AT,
    },
    state,
  );
  return { events, state: fold(balanceMonitorDecider, events, state) };
}

const condition = fc.record({
  field: fc.constantFrom('available', 'posted', 'pending') as fc.Arbitrary<BalanceCondition['field']>,
  op: fc.constantFrom('lt', 'lte', 'gt', 'gte') as fc.Arbitrary<BalanceCondition['op']>,
  amount: fc.integer({ min: -50, max: 50 }),
});
const balance = fc.record({
  available: fc.integer({ min: -60, max: 60 }),
  posted: fc.integer({ min: -60, max: 60 }),
  pending: fc.integer({ min: 0, max: 60 }),
});

function transitions(
  c: BalanceCondition,
  balances: readonly MonitoredBalance[],
): { up: number; down: number } {
  let held = false;
  let up = 0;
  let down = 0;
  for (const b of balances) {
    const holds = conditionHolds(c, b);
    if (holds && !held) up++;
    if (!holds && held) down++;
    held = holds;
  }
  return { up, down };
}

describe('balance monitor: edge-triggered', () => {
  it('alerts equal the false -> true transitions over random balance sequences', () => {
    fc.assert(
      fc.property(condition, fc.array(balance, { maxLength: 60 }), (c, balances) => {
        let state = created(c);
        const all: BalanceMonitorEvent[] = [];
        balances.forEach((b, i) => {
          const r = evaluate(state, i + 1, b);
          all.push(...r.events);
          state = r.state;
        });
        const expected = transitions(c, balances);
        expect(all.filter((e) => e.type === 'BalanceMonitorTriggered')).toHaveLength(expected.up);
        expect(all.filter((e) => e.type === 'BalanceMonitorRecovered')).toHaveLength(expected.down);
        expect(state.triggered).toBe(expected.up);
      }),
      { numRuns: 500 },
    );
  });

  it('evaluating positions again (replays, duplicates, a restart from any checkpoint) fires nothing more', () => {
    fc.assert(
      fc.property(
        condition,
        fc.array(balance, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (c, balances, replays) => {
          let state = created(c);
          let triggers = 0;
          const seen: Array<{ position: number; balance: MonitoredBalance }> = [];
          balances.forEach((b, i) => {
            const r = evaluate(state, i + 1, b);
            triggers += r.events.filter((e) => e.type === 'BalanceMonitorTriggered').length;
            state = r.state;
            seen.push({ position: i + 1, balance: b });
            // Re-deliver some already evaluated positions, in any order.
            for (const k of replays.slice(0, 3)) {
              const again = seen[k % seen.length]!;
              const rr = evaluate(state, again.position, again.balance);
              expect(rr.events, `replay of ${again.position}`).toEqual([]);
            }
          });
          expect(triggers).toBe(transitions(c, balances).up);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('each currency of a monitor without a currency is watched on its own', () => {
    let state = created({ field: 'available', op: 'lt', amount: 10 }, null);
    const low = { available: 5, posted: 5, pending: 0 };
    const high = { available: 50, posted: 50, pending: 0 };
    const steps: Array<[number, MonitoredBalance, string]> = [
      [1, low, 'usd'],
      [2, low, 'eur'],
      [3, high, 'usd'],
      [4, low, 'eur'],
      [5, low, 'usd'],
    ];
    const types: string[] = [];
    for (const [position, b, currency] of steps) {
      const r = evaluate(state, position, b, currency);
      types.push(...r.events.map((e) => `${e.type}:${(e.data as { currency: string }).currency}`));
      state = r.state;
    }
    expect(types).toEqual([
      'BalanceMonitorTriggered:usd',
      'BalanceMonitorTriggered:eur',
      'BalanceMonitorRecovered:usd',
      'BalanceMonitorTriggered:usd',
    ]);
  });

  it('a monitor of one currency ignores the others; a deleted one ignores everything', () => {
    let state = created({ field: 'posted', op: 'gte', amount: 0 }, 'usd');
    expect(evaluate(state, 1, { available: 1, posted: 1, pending: 0 }, 'eur').events).toEqual([]);
    const [deleted] = balanceMonitorDecider.decide(
      { type: 'DeleteBalanceMonitor', monitorId: 'bm_1', actor, at: AT },
      state,
    );
    state = balanceMonitorDecider.evolve(state, deleted!);
    expect(evaluate(state, 2, { available: 1, posted: 1, pending: 0 }).events).toEqual([]);
    expect(() =>
      balanceMonitorDecider.decide({ type: 'DeleteBalanceMonitor', monitorId: 'bm_1', actor, at: AT }, state),
    ).toThrow(/no balance monitor/);
  });
});
