import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A small time-series chart (uPlot). `times` are ISO strings; each series
 * is one line. The figures are also given as text (the latest value) so the
 * chart is never the only way to read them.
 */
/** The system's colour scheme, followed as it changes (the chart's canvas is drawn in its colours). */
function useColorScheme(): string {
  const query = matchMedia('(prefers-color-scheme: dark)');
  const [scheme, setScheme] = useState(query.matches ? 'dark' : 'light');
  useEffect(() => {
    const changed = () => setScheme(query.matches ? 'dark' : 'light');
    query.addEventListener('change', changed);
    return () => query.removeEventListener('change', changed);
  }, []);
  return scheme;
}

export function TimeChart(props: {
  title: string;
  times: string[];
  series: { label: string; values: (number | null)[]; format?: (v: number) => string }[];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const xs = props.times.map((t) => Date.parse(t) / 1000);
  const data = [xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData;
  const scheme = useColorScheme();

  useEffect(() => {
    const element = box.current!;
    const width = () => Math.max(240, element.clientWidth);
    const styles = getComputedStyle(document.documentElement);
    const ink = styles.getPropertyValue('--ink').trim() || '#222';
    const colors = ['--accent', '--accent-2'].map((v) => styles.getPropertyValue(v).trim() || '#2563eb');
    plot.current = new uPlot(
      {
        width: width(),
        height: 160,
        legend: { show: true },
        axes: [
          { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.2)' } },
          ...props.series.map((s, i) => ({
            stroke: ink,
            scale: i === 0 ? 'y' : 'y2',
            side: i === 0 ? 3 : 1,
            grid: { show: i === 0, stroke: 'rgba(128,128,128,0.2)' },
            values: (_: uPlot, ticks: number[]) => ticks.map((t) => (s.format ? s.format(t) : String(t))),
            size: 72,
          })),
        ],
        scales: { x: { time: true } },
        series: [
          {},
          ...props.series.map((s, i) => ({
            label: s.label,
            scale: i === 0 ? 'y' : 'y2',
            stroke: colors[i % colors.length],
            width: 2,
            spanGaps: true,
            value: (_: uPlot, v: number | null) => (v === null ? '—' : s.format ? s.format(v) : String(v)),
          })),
        ],
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: width(), height: 160 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
    };
  }, [props.series.length, scheme]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [JSON.stringify(data)]);

  const latest = props.series.map((s) => {
    const v = [...s.values].reverse().find((x) => x !== null);
    return `${s.label}: ${v === undefined || v === null ? '—' : s.format ? s.format(v) : v}`;
  });
  return (
    <figure class="chart">
      <figcaption>
        {props.title} <span class="muted">({latest.join(', ')})</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${props.title}: ${latest.join(', ')}`} />
    </figure>
  );
}
