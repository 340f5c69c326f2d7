import { useMemo, useState } from 'preact/hooks';
import { api, query } from '../api';
import { Chart, type ChartSeries } from '../components/Chart';
import { Async, Money, PageTitle, TableWrap } from '../components/ui';
import { useLoad } from '../hooks';
import { formatMoney, minorDigits, toUnits } from '../money';
import { href, navigate, type Route } from '../router';
import type { AnalyticsReport } from '../types';

const CHARTED: Array<{ metric: string; color: string; style: ChartSeries['style'] }> = [
  { metric: 'gross_booking_value', color: '#0b5cad', style: 'bars' },
  { metric: 'net_revenue', color: '#1a7f37', style: 'line' },
  { metric: 'refunds', color: '#cf222e', style: 'line' },
  { metric: 'held_for_students', color: '#8250df', style: 'line' },
];

function day(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

export function AnalyticsPage({ route }: { route: Route }) {
  const from = route.params.get('from') ?? day(-29);
  const to = route.params.get('to') ?? day(1);
  const granularity = route.params.get('granularity') ?? 'day';
  const currency = route.params.get('currency') ?? 'usd';
  const [form, setForm] = useState({ from, to, granularity, currency });
  const report = useLoad(
    (signal) =>
      api<AnalyticsReport>(`/v1/analytics${query({ from, to, granularity, currency })}`, { signal }),
    [from, to, granularity, currency],
  );
  return (
    <section>
      <PageTitle sub="Key money metrics per period, from the ledger's daily aggregates (the same numbers as GET /v1/analytics).">
        Analytics
      </PageTitle>
      <form
        class="fields"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('analytics', form));
        }}
      >
        <div class="field">
          <label for="a-from">From (UTC)</label>
          <input
            id="a-from"
            type="date"
            value={form.from}
            onInput={(e) => setForm({ ...form, from: (e.target as HTMLInputElement).value })}
          />
        </div>
        <div class="field">
          <label for="a-to">To, excluded</label>
          <input
            id="a-to"
            type="date"
            value={form.to}
            onInput={(e) => setForm({ ...form, to: (e.target as HTMLInputElement).value })}
          />
        </div>
        <div class="field">
          <label for="a-granularity">Per</label>
          <select
            id="a-granularity"
            value={form.granularity}
            onChange={(e) => setForm({ ...form, granularity: (e.target as HTMLSelectElement).value })}
          >
            <option value="day">day</option>
            <option value="week">week</option>
            <option value="month">month</option>
          </select>
        </div>
        <div class="field">
          <label for="a-currency">Currency</label>
          <input
            id="a-currency"
            size={5}
            maxLength={3}
            value={form.currency}
            onInput={(e) =>
              setForm({ ...form, currency: (e.target as HTMLInputElement).value.toLowerCase() })
            }
          />
        </div>
        <button type="submit">Show</button>
      </form>
      <Async loaded={report} what="the analytics">
        {(r) => <Report report={r} />}
      </Async>
    </section>
  );
}

function Report({ report }: { report: AnalyticsReport }) {
  const { currency } = report;
  const totals = useMemo(() => {
    const out: Record<string, number> = {};
    for (const p of report.periods)
      for (const [m, v] of Object.entries(p.metrics)) out[m] = (out[m] ?? 0) + v.amount;
    return out;
  }, [report]);
  const chart = useMemo(() => {
    const x = report.periods.map((p) => Math.floor(Date.parse(`${p.start}T00:00:00Z`) / 1000));
    const labels = new Map(report.metrics.map((m) => [m.name, m.label]));
    return {
      x,
      series: CHARTED.map((c) => ({
        label: labels.get(c.metric) ?? c.metric,
        color: c.color,
        style: c.style,
        values: report.periods.map((p) =>
          p.metrics[c.metric] ? toUnits(p.metrics[c.metric]!.amount, currency) : null,
        ),
      })),
    };
  }, [report, currency]);
  const format = useMemo(
    () => (v: number) => formatMoney(Math.round(v * 10 ** minorDigits(currency)), currency),
    [currency],
  );
  const stock = new Set(report.metrics.filter((m) => m.kind === 'stock').map((m) => m.name));
  const last = report.periods.at(-1);
  const refundRate = totals.gross_booking_value
    ? ((totals.refunds ?? 0) * 100) / totals.gross_booking_value
    : null;
  return (
    <>
      <section class="cards" aria-label="Totals over the period">
        <Card
          label="Gross booking value"
          value={<Money amount={totals.gross_booking_value ?? 0} currency={currency} />}
        />
        <Card label="Net revenue" value={<Money amount={totals.net_revenue ?? 0} currency={currency} />} />
        <Card
          label="Refunds"
          value={
            <>
              <Money amount={totals.refunds ?? 0} currency={currency} />
              {refundRate !== null ? ` (${refundRate.toFixed(1)} %)` : ''}
            </>
          }
        />
        <Card label="Payouts" value={<Money amount={totals.payouts ?? 0} currency={currency} />} />
        <Card
          label="Held for students (end)"
          value={<Money amount={last?.metrics.held_for_students?.amount ?? 0} currency={currency} />}
        />
        <Card
          label="Deferred revenue (end)"
          value={<Money amount={last?.metrics.deferred_revenue?.amount ?? 0} currency={currency} />}
        />
      </section>
      {report.periods.length > 0 ? (
        <Chart
          x={chart.x}
          series={chart.series}
          format={format}
          label={`Gross booking value, net revenue, refunds and money held for students per ${report.granularity}, ${currency.toUpperCase()}`}
        />
      ) : (
        <p class="empty">No money moved in this period.</p>
      )}
      <TableWrap label="Metrics per period">
        <table>
          <caption>
            Per {report.granularity}, {currency.toUpperCase()} (stocks are the balance at the period's end)
          </caption>
          <thead>
            <tr>
              <th scope="col">Metric</th>
              {report.periods.map((p) => (
                <th scope="col" class="num" key={p.start}>
                  {p.start}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {report.metrics.map((m) => (
              <tr key={m.name}>
                <th scope="row">{m.label}</th>
                {report.periods.map((p) => (
                  <td class="num" key={p.start}>
                    {p.metrics[m.name] ? (
                      <>
                        <Money amount={p.metrics[m.name]!.amount} currency={currency} />
                        {!stock.has(m.name) && p.metrics[m.name]!.count > 0 ? (
                          <span class="help"> ×{p.metrics[m.name]!.count}</span>
                        ) : null}
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                ))}
              </tr>
            ))}
            <tr>
              <th scope="row">Refund rate</th>
              {report.periods.map((p) => (
                <td class="num" key={p.start}>
                  {p.refundRateBps === null ? '—' : `${(p.refundRateBps / 100).toFixed(2)} %`}
                </td>
              ))}
            </tr>
            <tr>
              <th scope="row">Active wallets</th>
              {report.periods.map((p) => (
                <td class="num" key={p.start}>
                  {p.activeWallets}
                </td>
              ))}
            </tr>
          </tbody>
        </table>
      </TableWrap>
    </>
  );
}

function Card({ label, value }: { label: string; value: preact.ComponentChildren }) {
  return (
    <div class="card">
      <div class="label">{label}</div>
      <div class="value">{value}</div>
    </div>
  );
}
