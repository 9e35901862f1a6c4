import { useState } from 'preact/hooks';
import { call, seg } from './api';
import { TimeChart } from './chart';
import { listAllInstances } from './instances';
import { href } from './routes';
import { Badge, Confirm, Dialog, ErrorText, FormFooter, formatTime, useAction, usePoll } from './ui';

interface SyncedTable {
  name: string;
  database_instance_name: string;
  logical_database_name: string;
  spec: { source_table_full_name: string; primary_key_columns: string[]; scheduling_policy: string };
  data_synchronization_status: {
    detailed_state?: string;
    message?: string;
    pipeline_id: string;
    provisioning_status?: {
      initial_pipeline_sync_progress?: {
        synced_row_count?: number;
        total_row_count?: number;
        sync_progress_completion?: number;
      };
    };
    last_sync?: {
      delta_table_sync_info?: { delta_commit_version?: number; delta_commit_timestamp?: string };
      sync_end_timestamp?: string;
    };
    failed_status?: { timestamp?: string; last_processed_commit_version?: number };
  };
}

const POLICIES = ['SNAPSHOT', 'TRIGGERED', 'CONTINUOUS'];

const stateOf = (t: SyncedTable) =>
  t.data_synchronization_status.detailed_state ?? 'SYNCED_TABLE_PROVISIONING';
const busy = (t: SyncedTable) =>
  /PROVISIONING|UPDATE$|TRIGGERED_UPDATE/.test(stateOf(t)) && !/NO_PENDING/.test(stateOf(t));

async function listAllSyncedTables(): Promise<SyncedTable[]> {
  const instances = await listAllInstances();
  const lists = await Promise.all(
    instances.map((i) =>
      call<{ synced_tables?: SyncedTable[] }>(
        'GET',
        `/api/2.0/database/instances/${seg(i.name)}/synced_tables`,
      ).then((r) => r.synced_tables ?? []),
    ),
  );
  return lists.flat().sort((a, b) => a.name.localeCompare(b.name));
}

export function SyncedTablesPage() {
  const [creating, setCreating] = useState(false);
  const { data, error, reload } = usePoll(listAllSyncedTables, (list) =>
    (list ?? []).some(busy) ? 1000 : 5000,
  );
  return (
    <section>
      <div class="title-row">
        <h1 tabIndex={-1}>Synced tables</h1>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          Create synced table
        </button>
      </div>
      <ErrorText error={error} />
      {data && data.length === 0 ? (
        <p class="muted">
          No synced tables. Create one to copy a Delta table into an instance and keep it current.
        </p>
      ) : null}
      {data && data.length > 0 ? (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col" class="wide">
                Source
              </th>
              <th scope="col">Instance</th>
              <th scope="col" class="wide">
                Last synced version
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((t) => (
              <tr key={t.name}>
                <td>
                  <a href={href('synced-tables', t.name)}>{t.name}</a>
                </td>
                <td>
                  <Badge state={stateOf(t)} />
                </td>
                <td class="wide">{t.spec.source_table_full_name}</td>
                <td>{t.database_instance_name}</td>
                <td class="wide">
                  {t.data_synchronization_status.last_sync?.delta_table_sync_info?.delta_commit_version ??
                    '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {creating ? (
        <CreateSyncedTable
          onClose={() => setCreating(false)}
          onCreated={(name) => {
            setCreating(false);
            reload();
            location.hash = href('synced-tables', name);
          }}
        />
      ) : null}
    </section>
  );
}

function CreateSyncedTable({
  onClose,
  onCreated,
}: {
  onClose: () => void;
  onCreated: (name: string) => void;
}) {
  const { data: instances } = usePoll(listAllInstances, () => undefined);
  const [instance, setInstance] = useState('');
  const [source, setSource] = useState('');
  const [columns, setColumns] = useState<string[]>();
  const [sourceError, setSourceError] = useState<unknown>();
  const [key, setKey] = useState<string[]>([]);
  const [policy, setPolicy] = useState('TRIGGERED');
  const [target, setTarget] = useState('');
  const [database, setDatabase] = useState('');
  const submit = useAction();
  const chosenInstance = instance || instances?.[0]?.name || '';

  const loadColumns = async () => {
    setSourceError(undefined);
    setColumns(undefined);
    if (!source.trim()) return;
    try {
      const table = await call<{ columns?: { name: string }[] }>(
        'GET',
        `/api/2.1/unity-catalog/tables/${seg(source.trim())}`,
      );
      setColumns((table.columns ?? []).map((c) => c.name));
      setKey([]);
    } catch (e) {
      setSourceError(e);
    }
  };

  return (
    <Dialog title="Create a synced table" onClose={onClose}>
      <form
        onSubmit={submit.onSubmit(async () => {
          const created = await call<{ name: string }>('POST', '/api/2.0/database/synced_tables', {
            name: target.trim(),
            database_instance_name: chosenInstance,
            ...(database.trim() ? { logical_database_name: database.trim() } : {}),
            spec: {
              source_table_full_name: source.trim(),
              primary_key_columns: key,
              scheduling_policy: policy,
              create_database_objects_if_missing: true,
            },
          });
          onCreated(created.name);
        })}
      >
        <label for="st-instance">Instance</label>
        <select
          id="st-instance"
          value={chosenInstance}
          onChange={(e) => setInstance((e.target as HTMLSelectElement).value)}
        >
          {(instances ?? []).map((i) => (
            <option key={i.name}>{i.name}</option>
          ))}
        </select>
        <label for="st-source">Source Delta table</label>
        <div class="row">
          <input
            id="st-source"
            placeholder="analytics.gold.daily_revenue"
            value={source}
            onInput={(e) => setSource((e.target as HTMLInputElement).value)}
            onBlur={loadColumns}
          />
          <button type="button" onClick={loadColumns}>
            Load columns
          </button>
        </div>
        <ErrorText error={sourceError} />
        {columns ? (
          <fieldset>
            <legend>Primary key</legend>
            {columns.map((c) => (
              <label class="check" key={c}>
                <input
                  type="checkbox"
                  name="primary-key"
                  value={c}
                  checked={key.includes(c)}
                  onChange={(e) =>
                    setKey((k) =>
                      (e.target as HTMLInputElement).checked ? [...k, c] : k.filter((x) => x !== c),
                    )
                  }
                />
                {c}
              </label>
            ))}
          </fieldset>
        ) : null}
        <label for="st-policy">Scheduling policy</label>
        <select
          id="st-policy"
          value={policy}
          onChange={(e) => setPolicy((e.target as HTMLSelectElement).value)}
        >
          {POLICIES.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
        <label for="st-target">Target table</label>
        <input
          id="st-target"
          placeholder="analytics.operational.daily_revenue"
          value={target}
          aria-describedby="st-target-help"
          onInput={(e) => setTarget((e.target as HTMLInputElement).value)}
        />
        <p id="st-target-help" class="muted">
          catalog.schema.table in a database catalog or registered schema, or a bare table name for the
          instance's registered schema.
        </p>
        <label for="st-database">Postgres database (optional)</label>
        <input
          id="st-database"
          value={database}
          onInput={(e) => setDatabase((e.target as HTMLInputElement).value)}
        />
        <FormFooter action={submit} onCancel={onClose} label="Create" busyLabel="Creating…" />
      </form>
    </Dialog>
  );
}

interface Pass {
  time: string;
  rows_synced: number;
  delta_version: string;
  lag_ms?: number;
}

export function SyncedTableDetail({ name }: { name: string }) {
  const {
    data: table,
    error,
    reload,
  } = usePoll(
    () => call<SyncedTable>('GET', `/api/2.0/database/synced_tables/${seg(name)}`),
    (t) => (t && busy(t) ? 700 : 3000),
    [name],
  );
  const { data: passes } = usePoll(
    () =>
      call<{ passes: Pass[] }>('GET', `/api/2.0/pier/database/synced_tables/${seg(name)}/passes?minutes=60`),
    () => 5000,
    [name],
  );
  const [actionError, setActionError] = useState<unknown>();
  const [started, setStarted] = useState<string>();
  const [deleting, setDeleting] = useState(false);
  const status = table?.data_synchronization_status;
  const progress = status?.provisioning_status?.initial_pipeline_sync_progress;
  const state = table ? stateOf(table) : '';
  const snapshotting = state.includes('INITIAL_SNAPSHOT') || state.endsWith('PROVISIONING');
  const completion = progress?.sync_progress_completion ?? (status?.last_sync ? 1 : 0);
  const failed = state.includes('FAILED');
  const update = async (fullRefresh: boolean) => {
    setActionError(undefined);
    try {
      await call('POST', `/api/2.0/pipelines/${seg(status!.pipeline_id)}/updates`, {
        full_refresh: fullRefresh,
      });
      setStarted(fullRefresh ? 'Full refresh started.' : 'Update started.');
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  return (
    <section>
      <p class="crumbs">
        <a href={href('synced-tables')}>Synced tables</a> / {name}
      </p>
      <div class="title-row">
        <h1 tabIndex={-1}>{name}</h1>
        {table ? <Badge state={state} /> : null}
      </div>
      <ErrorText error={error} />
      {table && status ? (
        <>
          <div class="sync-progress">
            <label for="sync-progress">
              {snapshotting ? 'Initial snapshot' : 'Synced'}
              {progress?.total_row_count !== undefined
                ? `: ${progress.synced_row_count ?? 0} of ${progress.total_row_count} rows`
                : ''}
            </label>
            <progress
              id="sync-progress"
              max={100}
              value={Math.round(completion * 100)}
              data-testid="sync-progress"
            >
              {Math.round(completion * 100)}%
            </progress>
            <span data-testid="sync-percent">{Math.round(completion * 100)}%</span>
          </div>
          {failed ? (
            <div class="error" role="alert">
              <strong>The last sync failed.</strong> {status.message}
            </div>
          ) : (
            <p>{status.message}</p>
          )}
          <dl class="facts">
            <dt>Source</dt>
            <dd>
              <a href={href('catalog', ...table.spec.source_table_full_name.split('.'))}>
                {table.spec.source_table_full_name}
              </a>
            </dd>
            <dt>Instance</dt>
            <dd>
              <a href={href('instances', table.database_instance_name)}>{table.database_instance_name}</a> ·{' '}
              {table.logical_database_name}
            </dd>
            <dt>Primary key</dt>
            <dd>{table.spec.primary_key_columns.join(', ')}</dd>
            <dt>Policy</dt>
            <dd>{table.spec.scheduling_policy}</dd>
            <dt>Last synced version</dt>
            <dd data-testid="last-version">
              {status.last_sync?.delta_table_sync_info?.delta_commit_version ?? '—'}
            </dd>
            <dt>Last synced</dt>
            <dd>{formatTime(status.last_sync?.sync_end_timestamp)}</dd>
          </dl>
          <fieldset class="toolbar">
            <legend class="sr-only">Synced table actions</legend>
            <button type="button" onClick={() => update(false)}>
              Start an update
            </button>
            <button type="button" onClick={() => update(true)}>
              Full refresh
            </button>
            <button type="button" class="danger" onClick={() => setDeleting(true)}>
              Delete
            </button>
            <span role="status" class="muted">
              {started ?? ''}
            </span>
          </fieldset>
          <ErrorText error={actionError} />
          <section aria-labelledby="sync-charts-title">
            <h2 id="sync-charts-title">Passes, last hour</h2>
            {passes && passes.passes.length === 0 ? (
              <p class="muted">No passes with changes in the last hour.</p>
            ) : null}
            {passes && passes.passes.length > 0 ? (
              <div class="charts">
                <TimeChart
                  title="Rows synced per pass"
                  times={passes.passes.map((p) => p.time)}
                  series={[{ label: 'rows', values: passes.passes.map((p) => p.rows_synced) }]}
                />
                <TimeChart
                  title="Lag behind the source commit"
                  times={passes.passes.map((p) => p.time)}
                  series={[
                    {
                      label: 'lag',
                      values: passes.passes.map((p) => p.lag_ms ?? null),
                      format: (v) => (v >= 10_000 ? `${(v / 1000).toFixed(0)} s` : `${Math.round(v)} ms`),
                    },
                  ]}
                />
              </div>
            ) : null}
          </section>
        </>
      ) : null}
      {deleting ? (
        <Confirm
          title={`Delete ${name}?`}
          message="The synced table stops syncing and leaves the catalog; its Postgres table stays unless purged."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `/api/2.0/database/synced_tables/${seg(name)}`);
            location.hash = href('synced-tables');
          }}
          onClose={() => setDeleting(false)}
        />
      ) : null}
    </section>
  );
}
