import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  values: Array<number | null>;
  color: string;
  /** Draw as stepped line (balances change at instants) or as bars (per-period amounts). */
  style?: 'step' | 'line' | 'bars';
}

/**
 * A uPlot chart that follows its container's width. `x` is seconds since the epoch (uPlot's time
 * scale). The canvas is described for assistive technology by `label`; every chart in the console has
 * its numbers in a table next to it as well.
 */
export function Chart({
  x,
  series,
  label,
  height = 260,
  format,
}: {
  x: number[];
  series: ChartSeries[];
  label: string;
  height?: number;
  /** Formats a y value for the axis and the legend. */
  format: (value: number) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(280, el.clientWidth - 16);
    const bars = uPlot.paths.bars?.({ size: [0.6, 40] });
    const stepped = uPlot.paths.stepped?.({ align: 1 });
    const plot = new uPlot(
      {
        width,
        height,
        scales: { x: { time: true } },
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        axes: [
          { stroke: '#57606a', grid: { stroke: '#eaeef2' } },
          {
            stroke: '#57606a',
            grid: { stroke: '#eaeef2' },
            size: 90,
            values: (_u, splits) => splits.map((v) => format(v)),
          },
        ],
        series: [
          { label: 'Time' },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            ...(s.style === 'bars' ? { fill: `${s.color}55`, paths: bars } : {}),
            ...(s.style === 'step' ? { paths: stepped } : {}),
            value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)),
          })),
        ],
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    el.querySelector('canvas')?.setAttribute('aria-hidden', 'true');
    const observer = new ResizeObserver(() => {
      plot.setSize({ width: Math.max(280, el.clientWidth - 16), height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [x, series, height, format]);
  return <div class="chart" ref={box} role="img" aria-label={label} data-points={x.length} />;
}
