/**
 * Pier's own metrics, in memory, in the Prometheus text exposition format
 * (version 0.0.4). The format is a few lines of text per series, so Pier
 * writes it itself rather than take a client library and its default
 * process metrics (docs/dependencies.md).
 *
 * @example
 * const requests = new Counter('pier_api_requests_total', 'API requests.', ['route', 'status']);
 * requests.inc({ route: '/api/2.0/database/instances', status: '200' });
 * renderFamilies([requests.family()]);
 */

/** One metric family: its samples, ready for the text format. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: { name?: string; labels: Record<string, string>; value: number | bigint }[];
}

type Labels = Record<string, string>;

function keyOf(labelNames: readonly string[], labels: Labels): string {
  return JSON.stringify(labelNames.map((n) => labels[n] ?? ''));
}

function labelsOf(labelNames: readonly string[], key: string): Labels {
  const values = JSON.parse(key) as string[];
  return Object.fromEntries(labelNames.map((n, i) => [n, values[i]]));
}

class Counter {
  private readonly values = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(this.labelNames, labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: 'counter',
      samples: [...this.values].map(([key, value]) => ({ labels: labelsOf(this.labelNames, key), value })),
    };
  }
}

/** Durations in seconds, with cumulative buckets as Prometheus histograms have them. */
class Histogram {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
    readonly bounds: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  ) {}

  observe(labels: Labels, seconds: number): void {
    const key = keyOf(this.labelNames, labels);
    let series = this.series.get(key);
    if (!series) {
      series = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    for (const [i, bound] of this.bounds.entries()) if (seconds <= bound) series.buckets[i]++;
    series.sum += seconds;
    series.count++;
  }

  family(): MetricFamily {
    const samples: MetricFamily['samples'] = [];
    for (const [key, series] of this.series) {
      const labels = labelsOf(this.labelNames, key);
      for (const [i, bound] of this.bounds.entries()) {
        samples.push({
          name: `${this.name}_bucket`,
          labels: { ...labels, le: String(bound) },
          value: series.buckets[i],
        });
      }
      samples.push({ name: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: series.count });
      samples.push({ name: `${this.name}_sum`, labels, value: series.sum });
      samples.push({ name: `${this.name}_count`, labels, value: series.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', samples };
  }
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
}

/** The text exposition format of these families (`Content-Type: text/plain; version=0.0.4`). */
export function renderFamilies(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${sample.name ?? family.name}${labels ? `{${labels}}` : ''} ${String(sample.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The proxy's refusals that are failed logins (the SQLSTATE class 28 kinds). */
const AUTH_FAILURE_KINDS = new Set([
  'TOKEN_MALFORMED',
  'TOKEN_EXPIRED',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_UNKNOWN_KEY',
  'TOKEN_WRONG_ISSUER',
  'TOKEN_WRONG_INSTANCE',
  'TOKEN_WRONG_USER',
  'USER_NOT_ALLOWED',
  'IDENTITY_REVOKED',
  'PAT_AS_PASSWORD',
  'LOGIN_THROTTLED',
]);

/** This process's counters and histograms; `/metrics` renders them with the instance samples. */
export const pierMetrics = {
  apiRequests: new Counter('pier_api_requests_total', 'API requests by route template, method and status.', [
    'route',
    'method',
    'status',
  ]),
  proxyConnections: new Counter(
    'pier_proxy_connections_total',
    'Client connections the proxy let through (connected) or refused, by outcome and error kind.',
    ['outcome', 'kind'],
  ),
  proxyAuthFailures: new Counter(
    'pier_proxy_auth_failures_total',
    'Failed logins at the proxy by kind (expired, wrong instance, revoked identity, throttled, ...).',
    ['kind'],
  ),
  reconcilePasses: new Histogram(
    'pier_reconcile_duration_seconds',
    "Duration of one reconciler pass over an instance, by outcome ('done', 'again', 'wait', 'error').",
    ['outcome'],
  ),
  syncPasses: new Histogram(
    'pier_sync_duration_seconds',
    "Duration of one synced-table pass, by scheduling policy and outcome ('synced', 'failed').",
    ['policy', 'outcome'],
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  ),
};

/** Counts one proxy event: a connection let through, or refused (and a failed login when it is one). */
export function countProxyEvent(event: { event: string; kind?: string }): void {
  if (event.event === 'connected') pierMetrics.proxyConnections.inc({ outcome: 'connected', kind: '' });
  if (event.event !== 'refused') return;
  const kind = event.kind ?? 'INTERNAL';
  pierMetrics.proxyConnections.inc({ outcome: 'refused', kind });
  if (AUTH_FAILURE_KINDS.has(kind)) pierMetrics.proxyAuthFailures.inc({ kind });
}
