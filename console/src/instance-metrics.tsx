import { call, seg } from './api';
import { TimeChart } from './chart';
import { ErrorText, formatBytes, usePoll } from './ui';

interface Point {
  time: string;
  connections: number;
  database_size_bytes: string;
  transactions_per_second: number | null;
  cache_hit_ratio: number | null;
}

/** The last hour of an instance's samples (taken by Pier every ~15 s), as four charts. */
export function InstanceMetrics({ name }: { name: string }) {
  const { data, error } = usePoll(
    () =>
      call<{ points: Point[] }>('GET', `/api/2.0/pier/database/instances/${seg(name)}/metrics?minutes=60`),
    () => 15_000,
    [name],
  );
  const points = data?.points ?? [];
  const times = points.map((p) => p.time);
  return (
    <section aria-labelledby="metrics-title">
      <h2 id="metrics-title">Metrics, last hour</h2>
      <ErrorText error={error} />
      {data && points.length === 0 ? (
        <p class="muted">No samples yet: Pier samples running instances every 15 seconds.</p>
      ) : null}
      {points.length > 0 ? (
        <div class="charts">
          <TimeChart
            title="Connections"
            times={times}
            series={[{ label: 'connections', values: points.map((p) => p.connections) }]}
          />
          <TimeChart
            title="Transactions per second"
            times={times}
            series={[{ label: 'tx/s', values: points.map((p) => p.transactions_per_second) }]}
          />
          <TimeChart
            title="Database size"
            times={times}
            series={[
              {
                label: 'size',
                values: points.map((p) => Number(p.database_size_bytes)),
                format: formatBytes,
              },
            ]}
          />
          <TimeChart
            title="Cache hit ratio"
            times={times}
            series={[
              {
                label: 'hit ratio',
                values: points.map((p) => p.cache_hit_ratio),
                format: (v) => `${(v * 100).toFixed(1)}%`,
              },
            ]}
          />
        </div>
      ) : null}
    </section>
  );
}
