import { useState } from 'preact/hooks';
import { call, seg } from './api';
import { type CuSettings, cuRange, idOf, PG, SizingFields, sizingSpec, suspension } from './projects';
import { href } from './routes';
import { Badge, Confirm, Dialog, ErrorText, FormFooter, formatTime, useAction } from './ui';

/** A branch of an Autoscaling project and its endpoints, as the API reports them. */
export interface Branch {
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

export interface Endpoint {
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

/** Where a branch was taken from: its source and the LSN or time. */
export function takenFrom(b: Branch): string {
  const { source_branch: source, source_branch_lsn: lsn, source_branch_time: time } = b.status;
  if (!source) return 'the root branch';
  const at = [lsn ? `LSN ${lsn}` : undefined, time ? formatTime(time) : undefined].filter(Boolean);
  return `from ${idOf(source)}${at.length ? ` at ${at.join(', ')}` : ''}`;
}

export function BranchPanel(props: {
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
        <FormFooter action={save} onCancel={onClose} label="Save" busyLabel="Saving…" />
      </form>
    </Dialog>
  );
}
