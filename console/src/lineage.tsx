import { call, seg } from './api';
import { href } from './routes';
import { ErrorText, usePoll } from './ui';

interface Edge {
  tableInfo: { name: string; catalog_name: string; schema_name: string };
}

const full = (e: Edge) => `${e.tableInfo.catalog_name}.${e.tableInfo.schema_name}.${e.tableInfo.name}`;

/**
 * The table's lineage as a small graph: sources on the left, this table in
 * the middle, synced tables (and other targets) on the right. Every node is
 * a link, so the graph is also a list a keyboard or screen reader can use.
 */
export function LineageGraph({ fullName }: { fullName: string }) {
  const { data, error } = usePoll(
    () =>
      call<{ upstreams?: Edge[]; downstreams?: Edge[] }>(
        'GET',
        `/api/2.0/lineage-tracking/table-lineage?table_name=${seg(fullName)}`,
      ),
    () => undefined,
    [fullName],
  );
  const up = (data?.upstreams ?? []).map(full);
  const down = (data?.downstreams ?? []).map(full);
  const rows = Math.max(1, up.length, down.length);
  const rowHeight = 44;
  const height = rows * rowHeight + 16;
  const width = 16 + 260 * (1 + Number(up.length > 0) + Number(down.length > 0)) - 12;
  const nodeWidth = 232;
  // Only the columns there is something in: no empty space left of a table with no source.
  const present = [up.length > 0, true, down.length > 0];
  const column = (i: number) => 16 + 260 * present.slice(0, i).filter(Boolean).length;
  const y = (i: number, count: number) => 8 + ((rows - count) * rowHeight) / 2 + i * rowHeight;
  const node = (name: string, x: number, top: number, current = false) => {
    const parts = name.split('.');
    return (
      <a key={`${x}-${name}`} href={current ? undefined : href('catalog', ...parts)}>
        <title>{name}</title>
        <rect x={x} y={top} width={nodeWidth} height={32} rx={6} class={current ? 'node current' : 'node'} />
        <text x={x + 10} y={top + 21} class="node-text">
          {name.length > 29 ? `…${name.slice(-28)}` : name}
        </text>
      </a>
    );
  };
  return (
    <section aria-labelledby="lineage-title">
      <h2 id="lineage-title">Lineage</h2>
      <ErrorText error={error} />
      {data && up.length === 0 && down.length === 0 ? (
        <p class="muted">No lineage: nothing is synced from or into this table.</p>
      ) : null}
      {data && (up.length > 0 || down.length > 0) ? (
        <div class="scroll">
          <svg
            class="lineage"
            viewBox={`0 0 ${width} ${height}`}
            width={width}
            height={height}
            aria-label={`Lineage of ${fullName}: ${up.length} source(s), ${down.length} target(s)`}
          >
            <defs>
              <marker
                id="arrow"
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="6"
                markerHeight="6"
                orient="auto"
              >
                <path d="M0,0 L10,5 L0,10 z" class="edge-head" />
              </marker>
            </defs>
            {up.map((_, i) => (
              <line
                key={`u${i}`}
                x1={column(0) + nodeWidth}
                y1={y(i, up.length) + 16}
                x2={column(1)}
                y2={y(0, 1) + 16}
                class="edge"
                marker-end="url(#arrow)"
              />
            ))}
            {down.map((_, i) => (
              <line
                key={`d${i}`}
                x1={column(1) + nodeWidth}
                y1={y(0, 1) + 16}
                x2={column(2)}
                y2={y(i, down.length) + 16}
                class="edge"
                marker-end="url(#arrow)"
              />
            ))}
            {up.map((name, i) => node(name, column(0), y(i, up.length)))}
            {node(fullName, column(1), y(0, 1), true)}
            {down.map((name, i) => node(name, column(2), y(i, down.length)))}
          </svg>
        </div>
      ) : null}
    </section>
  );
}
