import { useEffect, useState } from 'preact/hooks';
import { call, type Session, seg, uuid } from './api';
import { Permissions, Roles } from './instance-access';
import { InstanceMetrics } from './instance-metrics';
import { CAPACITIES, type Instance, pollEvery } from './instances';
import { href } from './routes';
import { Badge, Confirm, Copyable, ErrorText, usePoll } from './ui';

type Pending = { action: string; until: (i: Instance | undefined) => boolean };

export function InstanceDetail({ name, session }: { name: string; session: Session }) {
  const [pending, setPending] = useState<Pending>();
  const [asking, setAsking] = useState<'stop' | 'start' | 'resize' | 'delete'>();
  const [capacity, setCapacity] = useState<string>();
  const {
    data: instance,
    error,
    reload,
  } = usePoll(
    () => call<Instance>('GET', `/api/2.0/database/instances/${seg(name)}`),
    (i) => (pending ? 700 : pollEvery(i ? [i.state] : [])),
    [name, pending],
  );
  useEffect(() => {
    if (pending?.until(instance)) setPending(undefined);
  }, [instance?.state, instance?.capacity]);
  // Deleted: the instance is gone; back to the list.
  useEffect(() => {
    if (pending?.action === 'Deleting' && error && (error as { status?: number }).status === 404) {
      location.hash = href('instances');
    }
  }, [error]);

  const update = async (mask: string, body: Record<string, unknown>, next: Pending) => {
    await call('PATCH', `/api/2.0/database/instances/${seg(name)}?update_mask=${mask}`, body);
    setPending(next);
    reload();
  };
  const settledAt = (state: string) => (i: Instance | undefined) => i?.state === state;

  return (
    <section>
      <p class="crumbs">
        <a href={href('instances')}>Instances</a> / {name}
      </p>
      <div class="title-row">
        <h1 tabIndex={-1}>{name}</h1>
        {instance ? <Badge state={instance.state} /> : null}
      </div>
      <ErrorText error={pending?.action === 'Deleting' ? undefined : error} />
      {pending ? (
        <div class="progress" role="status">
          <progress aria-label={`${pending.action} ${name}`} />
          <span>
            {pending.action}… now {instance?.state ?? '…'}
          </span>
        </div>
      ) : null}
      {instance?.status_message ? <p class="error">{instance.status_message}</p> : null}
      {instance ? (
        <>
          <fieldset class="toolbar">
            <legend class="sr-only">Instance actions</legend>
            {instance.stopped ? (
              <button type="button" onClick={() => setAsking('start')} disabled={!!pending}>
                Start
              </button>
            ) : (
              <button type="button" onClick={() => setAsking('stop')} disabled={!!pending}>
                Stop
              </button>
            )}
            <label for="resize-capacity" class="inline">
              Capacity
            </label>
            <select
              id="resize-capacity"
              value={capacity ?? instance.capacity}
              onChange={(e) => setCapacity((e.target as HTMLSelectElement).value)}
            >
              {CAPACITIES.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
            <button
              type="button"
              onClick={() => setAsking('resize')}
              disabled={!!pending || !capacity || capacity === instance.capacity}
            >
              Resize
            </button>
            <button type="button" class="danger" onClick={() => setAsking('delete')} disabled={!!pending}>
              Delete
            </button>
          </fieldset>
          <dl class="facts">
            <dt>Capacity</dt>
            <dd>{instance.capacity}</dd>
            <dt>Postgres</dt>
            <dd>{instance.pg_version.replace('PG_VERSION_', '')}</dd>
            <dt>Creator</dt>
            <dd>{instance.creator}</dd>
            <dt>Created</dt>
            <dd>{new Date(instance.creation_time).toLocaleString()}</dd>
            <dt>Retention</dt>
            <dd>{instance.retention_window_in_days ?? '—'} days</dd>
            <dt>Tags</dt>
            <dd>
              {(instance.effective_custom_tags ?? []).map((t) => `${t.key}=${t.value}`).join(', ') || '—'}
            </dd>
          </dl>
          <Connection instance={instance} session={session} />
          <InstanceMetrics name={name} />
          <Permissions name={name} />
          <Roles name={name} />
        </>
      ) : null}
      {asking === 'stop' ? (
        <Confirm
          title={`Stop ${name}?`}
          message="Connections are closed and the instance stops. Its data stays; start it again at any time."
          action="Stop"
          onConfirm={() =>
            update('stopped', { stopped: true }, { action: 'Stopping', until: settledAt('STOPPED') })
          }
          onClose={() => setAsking(undefined)}
        />
      ) : null}
      {asking === 'start' ? (
        <Confirm
          title={`Start ${name}?`}
          message="The instance starts and accepts connections once AVAILABLE."
          action="Start"
          onConfirm={() =>
            update('stopped', { stopped: false }, { action: 'Starting', until: settledAt('AVAILABLE') })
          }
          onClose={() => setAsking(undefined)}
        />
      ) : null}
      {asking === 'resize' && capacity ? (
        <Confirm
          title={`Resize ${name} to ${capacity}?`}
          message="Postgres restarts with the new capacity's settings: open connections are closed."
          action="Resize"
          onConfirm={() =>
            update(
              'capacity',
              { capacity },
              {
                action: `Resizing to ${capacity}`,
                until: (i) => i?.capacity === capacity && i.state === (i.stopped ? 'STOPPED' : 'AVAILABLE'),
              },
            )
          }
          onClose={() => setAsking(undefined)}
        />
      ) : null}
      {asking === 'delete' ? (
        <Confirm
          title={`Delete ${name}?`}
          message="The instance, its databases and its synced tables' targets are deleted. This cannot be undone."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `/api/2.0/database/instances/${seg(name)}`);
            setPending({ action: 'Deleting', until: () => false });
          }}
          onClose={() => setAsking(undefined)}
        />
      ) : null}
    </section>
  );
}

/** Host, port, database and user, ready-made commands, and a credential to paste as the password. */
function Connection({ instance, session }: { instance: Instance; session: Session }) {
  const { proxy_port: port, ca_cert_path: ca, database } = session.connection;
  const host = instance.read_write_dns;
  const user = session.user_name;
  const ssl = ca ? `sslmode=verify-full sslrootcert=${ca}` : 'sslmode=require';
  const sslQuery = ca ? `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}` : 'sslmode=require';
  const conninfo = `host=${host} port=${port} dbname=${database} user=${user} ${ssl}`;
  return (
    <section aria-labelledby="connect-title">
      <h2 id="connect-title">Connect</h2>
      <dl class="facts">
        <dt>Host</dt>
        <dd>
          <code>{host}</code>
        </dd>
        <dt>Port</dt>
        <dd>{port}</dd>
        <dt>Database</dt>
        <dd>{database}</dd>
        <dt>User</dt>
        <dd>{user}</dd>
      </dl>
      <p class="muted">The password is a database credential (below), valid for an hour; TLS is required.</p>
      <Copyable label="psql command" testId="psql-command" value={`psql "${conninfo}"`} />
      <Copyable label="psycopg" value={`psycopg.connect("${conninfo}", password=credential)`} />
      <Copyable
        label="node-postgres"
        value={`postgresql://${encodeURIComponent(user)}@${host}:${port}/${database}?${sslQuery}`}
      />
      <Copyable
        label="JDBC"
        value={`jdbc:postgresql://${host}:${port}/${database}?user=${encodeURIComponent(user)}&${ca ? `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}` : 'sslmode=require'}`}
      />
      <Credential name={instance.name} />
    </section>
  );
}

/** A new database credential, shown once, with the time it has left. */
function Credential({ name }: { name: string }) {
  const [credential, setCredential] = useState<{ token: string; expiration_time: string }>();
  const [error, setError] = useState<unknown>();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!credential) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [credential]);
  const left = credential
    ? Math.max(0, Math.round((Date.parse(credential.expiration_time) - now) / 1000))
    : 0;
  return (
    <div class="credential">
      <button
        type="button"
        class="primary"
        onClick={async () => {
          setError(undefined);
          try {
            setCredential(
              await call('POST', '/api/2.0/database/credentials', {
                instance_names: [name],
                request_id: uuid(),
              }),
            );
          } catch (e) {
            setError(e);
          }
        }}
      >
        Generate credential
      </button>
      <ErrorText error={error} />
      {credential ? (
        <div>
          <Copyable label="Credential (shown once)" testId="credential" value={credential.token} />
          <p role="timer" aria-live="off" data-testid="credential-expiry">
            {left > 0
              ? `Expires in ${Math.floor(left / 60)} min ${String(left % 60).padStart(2, '0')} s (${new Date(credential.expiration_time).toLocaleTimeString()}).`
              : 'Expired: generate a new one.'}
          </p>
        </div>
      ) : null}
    </div>
  );
}
