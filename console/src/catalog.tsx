import { call, seg } from './api';
import { LineageGraph } from './lineage';
import { href } from './routes';
import { ErrorText, formatTime, usePoll } from './ui';

interface Named {
  name: string;
  full_name?: string;
  comment?: string;
  catalog_type?: string;
  table_type?: string;
  data_source_format?: string;
}

/** Catalogs → schemas → tables, one level per page; database catalogs list the live Postgres schemas. */
export function CatalogPage({ path }: { path: string[] }) {
  const [catalog, schema, table] = path;
  const crumbs = [
    <a key="root" href={href('catalog')}>
      Catalog
    </a>,
  ];
  if (catalog)
    crumbs.push(
      <a key="c" href={href('catalog', catalog)}>
        {catalog}
      </a>,
    );
  if (schema)
    crumbs.push(
      <a key="s" href={href('catalog', catalog, schema)}>
        {schema}
      </a>,
    );
  return (
    <section>
      <p class="crumbs">
        {crumbs.flatMap((c, i) => (i === 0 ? [c] : [' / ', c]))}
        {table ? ` / ${table}` : null}
      </p>
      {table ? (
        <TableDetail fullName={`${catalog}.${schema}.${table}`} />
      ) : schema ? (
        <Listing
          title={`Tables in ${catalog}.${schema}`}
          load={() =>
            call<{ tables?: Named[] }>(
              'GET',
              `/api/2.1/unity-catalog/tables?catalog_name=${seg(catalog)}&schema_name=${seg(schema)}`,
            ).then((r) => r.tables ?? [])
          }
          link={(t) => href('catalog', catalog, schema, t.name)}
          kind={(t) => [t.table_type, t.data_source_format].filter(Boolean).join(' · ')}
          empty="No tables in this schema."
          deps={[catalog, schema]}
        />
      ) : catalog ? (
        <Listing
          title={`Schemas in ${catalog}`}
          load={() =>
            call<{ schemas?: Named[] }>(
              'GET',
              `/api/2.1/unity-catalog/schemas?catalog_name=${seg(catalog)}`,
            ).then((r) => r.schemas ?? [])
          }
          link={(s) => href('catalog', catalog, s.name)}
          kind={() => ''}
          empty="No schemas in this catalog."
          deps={[catalog]}
        />
      ) : (
        <Listing
          title="Catalogs"
          load={() =>
            call<{ catalogs?: Named[] }>('GET', '/api/2.1/unity-catalog/catalogs').then(
              (r) => r.catalogs ?? [],
            )
          }
          link={(c) => href('catalog', c.name)}
          kind={(c) =>
            c.catalog_type === 'MANAGED_ONLINE_CATALOG' ? 'Database catalog (live Postgres)' : 'Standard'
          }
          empty="No catalogs yet. `pier demo` makes one with a Delta table."
          deps={[]}
        />
      )}
    </section>
  );
}

function Listing(props: {
  title: string;
  load: () => Promise<Named[]>;
  link: (n: Named) => string;
  kind: (n: Named) => string;
  empty: string;
  deps: unknown[];
}) {
  const { data, error } = usePoll(props.load, () => undefined, props.deps);
  return (
    <>
      <h1 tabIndex={-1}>{props.title}</h1>
      <ErrorText error={error} />
      {data && data.length === 0 ? <p class="muted">{props.empty}</p> : null}
      {data && data.length > 0 ? (
        <ul class="cards">
          {data.map((n) => (
            <li key={n.name}>
              <a href={props.link(n)}>{n.name}</a>
              <span class="muted">{props.kind(n)}</span>
              {n.comment ? <span>{n.comment}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

interface Table extends Named {
  storage_location?: string;
  columns?: { name: string; type_text: string; nullable?: boolean; comment?: string }[];
}

interface HistoryEntry {
  version: number;
  timestamp: string;
  operation?: string;
  added_rows?: number;
  added_files: number;
  removed_files: number;
  operation_metrics?: Record<string, unknown>;
}

function TableDetail({ fullName }: { fullName: string }) {
  const { data: table, error } = usePoll(
    () => call<Table>('GET', `/api/2.1/unity-catalog/tables/${seg(fullName)}`),
    () => undefined,
    [fullName],
  );
  const delta = table?.data_source_format === 'DELTA';
  return (
    <>
      <h1 tabIndex={-1}>{fullName}</h1>
      <ErrorText error={error} />
      {table ? (
        <>
          <dl class="facts">
            <dt>Type</dt>
            <dd>{[table.table_type, table.data_source_format].filter(Boolean).join(' · ')}</dd>
            {table.storage_location ? (
              <>
                <dt>Location</dt>
                <dd>
                  <code>{table.storage_location}</code>
                </dd>
              </>
            ) : null}
            {table.comment ? (
              <>
                <dt>Comment</dt>
                <dd>{table.comment}</dd>
              </>
            ) : null}
          </dl>
          <h2>Schema</h2>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Column</th>
                <th scope="col">Type</th>
                <th scope="col">Nullable</th>
              </tr>
            </thead>
            <tbody>
              {(table.columns ?? []).map((c) => (
                <tr key={c.name}>
                  <td>{c.name}</td>
                  <td>
                    <code>{c.type_text}</code>
                  </td>
                  <td>{c.nullable === false ? 'no' : 'yes'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <LineageGraph fullName={fullName} />
          {delta ? <History fullName={fullName} /> : null}
          {delta ? <Preview fullName={fullName} /> : null}
        </>
      ) : null}
    </>
  );
}

function History({ fullName }: { fullName: string }) {
  const { data, error } = usePoll(
    () => call<{ history: HistoryEntry[] }>('GET', `/api/2.0/pier/tables/${seg(fullName)}/history?limit=20`),
    () => 10_000,
    [fullName],
  );
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <ErrorText error={error} />
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Time</th>
              <th scope="col">Operation</th>
              <th scope="col">Rows added</th>
              <th scope="col" class="wide">
                Files +/−
              </th>
            </tr>
          </thead>
          <tbody>
            {(data?.history ?? []).map((h) => (
              <tr key={h.version}>
                <td>{h.version}</td>
                <td>{formatTime(h.timestamp)}</td>
                <td>{h.operation ?? '—'}</td>
                <td>{h.added_rows ?? '—'}</td>
                <td class="wide">
                  +{h.added_files} / −{h.removed_files}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Preview({ fullName }: { fullName: string }) {
  const { data, error } = usePoll(
    () =>
      call<{ version: number; columns: { name: string; type: string }[]; rows: (string | null)[][] }>(
        'GET',
        `/api/2.0/pier/tables/${seg(fullName)}/preview?limit=20`,
      ),
    () => undefined,
    [fullName],
  );
  return (
    <section aria-labelledby="preview-title">
      <h2 id="preview-title">Rows{data ? ` (version ${data.version}, first ${data.rows.length})` : ''}</h2>
      <ErrorText error={error} />
      {data ? (
        <div class="scroll">
          <table class="list">
            <thead>
              <tr>
                {data.columns.map((c) => (
                  <th scope="col" key={c.name}>
                    {c.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.rows.map((row, i) => (
                <tr key={i}>
                  {row.map((v, j) => (
                    <td key={j}>{v ?? <span class="muted">null</span>}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
