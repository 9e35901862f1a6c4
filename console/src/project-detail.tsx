import { useState } from 'preact/hooks';
import { call, seg } from './api';
import {
  type CuSettings,
  cuRange,
  formatDuration,
  idOf,
  PG,
  type Project,
  SizingFields,
  sizingSpec,
  suspension,
} from './projects';
import { href } from './routes';
import { Badge, Confirm, Dialog, ErrorText, formatTime, useAction, usePoll } from './ui';

interface Branch {
  name: string;
  uid: string;
  create_time: string;
  status: {
    branch_id: string;
    current_state: string;
    pending_state?: string;
    default: boolean;
    is_protected: boolean;
    source_branch?: string;
    source_branch_lsn?: string;
    source_branch_time?: string;
    expire_time?: string;
    logical_size_bytes?: number;
  };
}

interface Endpoint {
  name: string;
  uid: string;
  status: CuSettings & {
    endpoint_id: string;
    endpoint_type: string;
    current_state: string;
    pending_state?: string;
    disabled: boolean;
    last_active_time?: string;
    hosts: { host: string; read_only_host?: string };
  };
}

interface ProjectData {
  project: Project;
  branches: Branch[];
  endpoints: Record<string, Endpoint[]>;
}

async function loadProject(id: string): Promise<ProjectData> {
  const base = `${PG}/projects/${seg(id)}`;
  const [project, listed] = await Promise.all([
    call<Project>('GET', base),
    call<{ branches?: Branch[] }>('GET', `${base}/branches?page_size=100`),
  ]);
  const branches = listed.branches ?? [];
  const endpoints: Record<string, Endpoint[]> = {};
  await Promise.all(
    branches.map(async (b) => {
      const page = await call<{ endpoints?: Endpoint[] }>(
        'GET',
        `${base}/branches/${seg(b.status.branch_id)}/endpoints`,
      );
      endpoints[b.status.branch_id] = page.endpoints ?? [];
    }),
  );
  return { project, branches, endpoints };
}

/** Every second while a branch or endpoint is on its way to another state, every 5 s otherwise. */
function pollEvery(data: ProjectData | undefined): number {
  if (!data) return 5000;
  const busy =
    data.branches.some((b) => b.status.pending_state || b.status.current_state === 'INIT') ||
    Object.values(data.endpoints)
      .flat()
      .some((e) => e.status.pending_state || e.status.current_state === 'INIT');
  return busy ? 1000 : 5000;
}

/** The branches as a tree: children under the branch they were taken from. */
function childrenOf(branches: Branch[]): Map<string | undefined, Branch[]> {
  const ids = new Set(branches.map((b) => b.status.branch_id));
  const tree = new Map<string | undefined, Branch[]>();
  for (const b of branches) {
    const source = b.status.source_branch ? idOf(b.status.source_branch) : undefined;
    const parent = source && ids.has(source) ? source : undefined;
    tree.set(parent, [...(tree.get(parent) ?? []), b]);
  }
  return tree;
}

/** Where a branch was taken from: its source and the LSN or time. */
function takenFrom(b: Branch): string {
  const { source_branch: source, source_branch_lsn: lsn, source_branch_time: time } = b.status;
  if (!source) return 'the root branch';
  const at = [lsn ? `LSN ${lsn}` : undefined, time ? formatTime(time) : undefined].filter(Boolean);
  return `from ${idOf(source)}${at.length ? ` at ${at.join(', ')}` : ''}`;
}

export function ProjectDetail({ id, branch }: { id: string; branch?: string }) {
  const [asking, setAsking] = useState<'delete' | 'branch'>();
  const [deleted, setDeleted] = useState(false);
  const { data, error, reload } = usePoll(() => loadProject(id), pollEvery, [id]);
  const selected = branch ?? (data ? idOf(data.project.status.default_branch) : undefined);
  const tree = data ? childrenOf(data.branches) : undefined;

  const renderBranches = (parent: string | undefined, depth: number) => {
    const list = tree?.get(parent) ?? [];
    if (!list.length) return null;
    return (
      <ul class="tree" aria-label={depth === 0 ? 'Branch tree' : `Branches from ${parent}`}>
        {list.map((b) => {
          const bid = b.status.branch_id;
          return (
            <li key={b.uid} data-branch={bid}>
              <div class="branch-node">
                <a href={href('projects', id, bid)} aria-current={bid === selected ? 'true' : undefined}>
                  {bid}
                </a>
                <Badge state={b.status.current_state} />
                {b.status.default ? <span class="tag">default</span> : null}
                {b.status.is_protected ? <span class="tag">protected</span> : null}
                <span class="muted from">{takenFrom(b)}</span>
              </div>
              {renderBranches(bid, depth + 1)}
            </li>
          );
        })}
      </ul>
    );
  };

  const current = data?.branches.find((b) => b.status.branch_id === selected);
  return (
    <section>
      <p class="crumbs">
        <a href={href('projects')}>Projects</a> / {id}
      </p>
      <div class="title-row">
        <h1 tabIndex={-1}>{id}</h1>
        {data ? <span class="muted">{data.project.status.display_name}</span> : null}
      </div>
      <ErrorText error={deleted ? undefined : error} />
      {data ? (
        <>
          <fieldset class="toolbar">
            <legend class="sr-only">Project actions</legend>
            <button type="button" class="primary" onClick={() => setAsking('branch')}>
              Create branch
            </button>
            <button type="button" class="danger" onClick={() => setAsking('delete')}>
              Delete project
            </button>
          </fieldset>
          <dl class="facts">
            <dt>Postgres</dt>
            <dd>{data.project.status.pg_version}</dd>
            <dt>Owner</dt>
            <dd>{data.project.status.owner}</dd>
            <dt>New endpoints</dt>
            <dd>
              {cuRange(data.project.status.default_endpoint_settings)}, suspend{' '}
              {suspension(data.project.status.default_endpoint_settings)}
            </dd>
            <dt>History kept</dt>
            <dd>{formatDuration(data.project.status.history_retention_duration)}</dd>
          </dl>
          <section aria-labelledby="branches-title">
            <h2 id="branches-title">Branches</h2>
            <nav aria-labelledby="branches-title">{renderBranches(undefined, 0)}</nav>
          </section>
          {current ? (
            <BranchPanel
              projectId={id}
              branch={current}
              endpoints={data.endpoints[current.status.branch_id] ?? []}
              reload={reload}
            />
          ) : selected ? (
            <p class="error" role="alert">
              No branch {selected} in {id}.
            </p>
          ) : null}
        </>
      ) : null}
      {asking === 'branch' && data ? (
        <CreateBranch
          projectId={id}
          branches={data.branches.map((b) => b.status.branch_id)}
          source={selected ?? idOf(data.project.status.default_branch)}
          onClose={() => setAsking(undefined)}
          onCreated={(bid) => {
            setAsking(undefined);
            reload();
            location.hash = href('projects', id, bid);
          }}
        />
      ) : null}
      {asking === 'delete' ? (
        <Confirm
          title={`Delete project ${id}?`}
          message="Its endpoints stop and the project is hidden; it can be undeleted until its history retention passes, then its data is removed."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `${PG}/projects/${seg(id)}`);
            setDeleted(true);
            location.hash = href('projects');
          }}
          onClose={() => setAsking(undefined)}
        />
      ) : null}
    </section>
  );
}

function BranchPanel(props: {
  projectId: string;
  branch: Branch;
  endpoints: Endpoint[];
  reload: () => void;
}) {
  const { projectId, branch, endpoints, reload } = props;
  const bid = branch.status.branch_id;
  const [asking, setAsking] = useState<'delete'>();
  const [editing, setEditing] = useState<Endpoint>();
  const wake = useAction();
  return (
    <section aria-labelledby="branch-title">
      <div class="title-row">
        <div class="named">
          <h2 id="branch-title">Branch {bid}</h2>
          <Badge state={branch.status.current_state} />
        </div>
        {!branch.status.default ? (
          <button type="button" class="danger" onClick={() => setAsking('delete')}>
            Delete branch
          </button>
        ) : null}
      </div>
      <dl class="facts">
        <dt>Taken</dt>
        <dd data-testid="branch-source">{takenFrom(branch)}</dd>
        <dt>Created</dt>
        <dd>{formatTime(branch.create_time)}</dd>
        <dt>Expires</dt>
        <dd>{branch.status.expire_time ? formatTime(branch.status.expire_time) : 'never'}</dd>
      </dl>
      <h3>Endpoints</h3>
      <ErrorText error={wake.error} />
      <ul class="cards">
        {endpoints.map((e) => {
          const eid = e.status.endpoint_id;
          const idle = e.status.current_state === 'IDLE' && !e.status.disabled;
          return (
            <li key={e.uid} class="card" data-endpoint={eid} aria-labelledby={`endpoint-${eid}`}>
              <div class="card-head">
                <h4 id={`endpoint-${eid}`}>
                  {eid}{' '}
                  <span class="muted">
                    {e.status.endpoint_type === 'ENDPOINT_TYPE_READ_ONLY' ? 'read-only' : 'read-write'}
                  </span>
                </h4>
                <Badge state={e.status.disabled ? 'DISABLED' : e.status.current_state} />
                <span class="spacer" />
                {idle ? (
                  <button
                    type="button"
                    class="primary"
                    disabled={wake.busy}
                    onClick={() =>
                      wake.run(async () => {
                        await call(
                          'POST',
                          `/api/2.0/pier/postgres/projects/${seg(projectId)}/branches/${seg(bid)}/endpoints/${seg(eid)}/wake`,
                        );
                        reload();
                      })
                    }
                  >
                    Wake up<span class="sr-only"> {eid}</span>
                  </button>
                ) : null}
                <button type="button" onClick={() => setEditing(e)}>
                  Edit<span class="sr-only"> {eid}</span>
                </button>
              </div>
              <dl class="facts">
                <dt>Compute</dt>
                <dd>{cuRange(e.status)}</dd>
                <dt>Suspend</dt>
                <dd>{suspension(e.status)}</dd>
                <dt>Host</dt>
                <dd>
                  <code>{e.status.hosts.read_only_host ?? e.status.hosts.host}</code>
                </dd>
                <dt>Last active</dt>
                <dd>{e.status.last_active_time ? formatTime(e.status.last_active_time) : '—'}</dd>
              </dl>
            </li>
          );
        })}
      </ul>
      <p class="muted">
        A suspended endpoint also wakes on the first connection through Pier's proxy; the client waits while
        it starts.
      </p>
      {editing ? (
        <EditEndpoint
          endpoint={editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            reload();
          }}
        />
      ) : null}
      {asking === 'delete' ? (
        <Confirm
          title={`Delete branch ${bid}?`}
          message="Its endpoints stop; the branch can be undeleted until the project's history retention passes."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `${PG}/projects/${seg(projectId)}/branches/${seg(bid)}`);
            location.hash = href('projects', projectId);
            reload();
          }}
          onClose={() => setAsking(undefined)}
        />
      ) : null}
    </section>
  );
}

/** Seconds from the API's duration (`"300s"`), for the form. */
function seconds(duration: string | undefined): string {
  return duration ? String(Number.parseFloat(duration)) : '';
}

function EditEndpoint(props: { endpoint: Endpoint; onClose: () => void; onSaved: () => void }) {
  const { endpoint, onClose, onSaved } = props;
  const [sizing, setSizing] = useState({
    min: String(endpoint.status.autoscaling_limit_min_cu),
    max: String(endpoint.status.autoscaling_limit_max_cu),
    suspend: seconds(endpoint.status.suspend_timeout_duration),
  });
  const save = useAction();
  const eid = endpoint.status.endpoint_id;
  return (
    <Dialog title={`Edit endpoint ${eid}`} onClose={onClose}>
      <form
        onSubmit={save.onSubmit(async () => {
          await call(
            'PATCH',
            `${PG}/${endpoint.name}?update_mask=spec.autoscaling_limit_min_cu,spec.autoscaling_limit_max_cu,spec.suspension`,
            { spec: sizingSpec(sizing) },
          );
          onSaved();
        })}
      >
        <SizingFields idPrefix="endpoint" value={sizing} onChange={setSizing} />
        <p class="muted">A new compute size restarts the endpoint's Postgres.</p>
        <ErrorText error={save.error} />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={save.busy}>
            {save.busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** `datetime-local`'s value for a time, in the browser's zone, to the second. */
function localInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function CreateBranch(props: {
  projectId: string;
  branches: string[];
  source: string;
  onClose: () => void;
  onCreated: (id: string) => void;
}) {
  const [id, setId] = useState('');
  const [source, setSource] = useState(props.source);
  const [point, setPoint] = useState<'now' | 'time' | 'lsn'>('now');
  const [time, setTime] = useState(() => localInput(new Date()));
  const [lsn, setLsn] = useState('');
  const [ttl, setTtl] = useState('');
  const submit = useAction();
  return (
    <Dialog title="Create a branch" onClose={props.onClose}>
      <form
        onSubmit={submit.onSubmit(async () => {
          const spec: Record<string, unknown> = {
            source_branch: `projects/${props.projectId}/branches/${source}`,
            ...(ttl.trim() ? { ttl: `${Number(ttl) * 3600}s` } : { no_expiry: true }),
          };
          if (point === 'lsn') spec.source_branch_lsn = lsn.trim();
          if (point === 'time') {
            const at = new Date(time);
            spec.source_branch_time = Number.isNaN(at.getTime()) ? time : at.toISOString();
          }
          await call('POST', `${PG}/projects/${seg(props.projectId)}/branches?branch_id=${seg(id)}`, {
            spec,
          });
          props.onCreated(id);
        })}
      >
        <label for="branch-id">Branch id</label>
        <input
          id="branch-id"
          value={id}
          autocomplete="off"
          onInput={(e) => setId((e.target as HTMLInputElement).value)}
        />
        <label for="branch-source">Source branch</label>
        <select
          id="branch-source"
          value={source}
          onChange={(e) => setSource((e.target as HTMLSelectElement).value)}
        >
          {props.branches.map((b) => (
            <option key={b}>{b}</option>
          ))}
        </select>
        <fieldset class="choices">
          <legend>Data as of</legend>
          {(
            [
              ['now', 'Now'],
              ['time', 'A point in time'],
              ['lsn', 'An LSN'],
            ] as const
          ).map(([value, label]) => (
            <label class="check" key={value}>
              <input
                type="radio"
                name="branch-point"
                value={value}
                checked={point === value}
                onChange={() => setPoint(value)}
              />
              {label}
            </label>
          ))}
        </fieldset>
        {point === 'time' ? (
          <>
            <label for="branch-time">Time (your time zone)</label>
            <input
              id="branch-time"
              type="datetime-local"
              step="1"
              value={time}
              onInput={(e) => setTime((e.target as HTMLInputElement).value)}
            />
          </>
        ) : null}
        {point === 'lsn' ? (
          <>
            <label for="branch-lsn">LSN</label>
            <input
              id="branch-lsn"
              placeholder="16/B374D848"
              value={lsn}
              autocomplete="off"
              aria-describedby="branch-lsn-help"
              onInput={(e) => setLsn((e.target as HTMLInputElement).value)}
            />
            <p id="branch-lsn-help" class="muted">
              As <code>SELECT pg_current_wal_lsn()</code> shows it on the source.
            </p>
          </>
        ) : null}
        <label for="branch-ttl">Expires after (hours)</label>
        <input
          id="branch-ttl"
          inputMode="numeric"
          placeholder="never"
          value={ttl}
          onInput={(e) => setTtl((e.target as HTMLInputElement).value)}
        />
        <ErrorText error={submit.error} />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={submit.busy}>
            {submit.busy ? 'Creating…' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
