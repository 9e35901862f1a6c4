import { useState } from 'preact/hooks';
import { call, seg } from './api';
import { Confirm, ErrorText, useAction, usePoll } from './ui';

interface Acl {
  access_control_list: {
    user_name?: string;
    group_name?: string;
    service_principal_name?: string;
    all_permissions: { permission_level: string; inherited: boolean }[];
  }[];
}

const LEVELS = ['CAN_USE', 'CAN_MANAGE'];

/** Who may use or manage the instance (Databricks' permissions API). */
export function Permissions({ name }: { name: string }) {
  const path = `/api/2.0/permissions/database-instances/${seg(name)}`;
  const { data, error, reload } = usePoll(
    () => call<Acl>('GET', path),
    () => undefined,
    [name],
  );
  const [principal, setPrincipal] = useState('');
  const [level, setLevel] = useState('CAN_USE');
  const grant = useAction();
  const [removing, setRemoving] = useState<string>();
  const direct = (data?.access_control_list ?? []).filter(
    (e) => e.user_name && e.all_permissions.some((p) => !p.inherited),
  );
  return (
    <section aria-labelledby="permissions-title">
      <h2 id="permissions-title">Permissions</h2>
      <ErrorText error={error} />
      <table class="list">
        <thead>
          <tr>
            <th scope="col">Principal</th>
            <th scope="col">Permission</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(data?.access_control_list ?? []).map((entry) => {
            const who = entry.user_name ?? entry.group_name ?? entry.service_principal_name ?? '?';
            const inherited = entry.all_permissions.every((p) => p.inherited);
            return (
              <tr key={who}>
                <td>{who}</td>
                <td>
                  {entry.all_permissions.map((p) => p.permission_level).join(', ')}
                  {inherited ? <span class="muted"> (inherited)</span> : null}
                </td>
                <td>
                  {inherited ? null : (
                    <button
                      type="button"
                      aria-label={`Remove ${who}'s permission`}
                      onClick={() => setRemoving(who)}
                    >
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form
        class="inline-form"
        onSubmit={grant.onSubmit(async () => {
          await call('PATCH', path, {
            access_control_list: [{ user_name: principal.trim(), permission_level: level }],
          });
          setPrincipal('');
          reload();
        })}
      >
        <label for="perm-principal">User</label>
        <input
          id="perm-principal"
          value={principal}
          placeholder="someone@example.com"
          onInput={(e) => setPrincipal((e.target as HTMLInputElement).value)}
        />
        <label for="perm-level">Permission</label>
        <select
          id="perm-level"
          value={level}
          onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}
        >
          {LEVELS.map((l) => (
            <option key={l}>{l}</option>
          ))}
        </select>
        <button type="submit">Grant</button>
      </form>
      <ErrorText error={grant.error} />
      {removing ? (
        <Confirm
          title={`Remove ${removing}'s permission?`}
          message={`${removing} can no longer use ${name} (unless an admin).`}
          action="Remove"
          danger
          onConfirm={async () => {
            const rest = direct
              .filter((e) => e.user_name !== removing)
              .map((e) => ({
                user_name: e.user_name,
                permission_level: e.all_permissions[0].permission_level,
              }));
            await call('PUT', path, { access_control_list: rest });
            reload();
          }}
          onClose={() => setRemoving(undefined)}
        />
      ) : null}
    </section>
  );
}

interface Role {
  name: string;
  identity_type: string;
  membership_role?: string;
  effective_attributes?: Record<string, boolean>;
}

const IDENTITY_TYPES = ['USER', 'SERVICE_PRINCIPAL', 'GROUP', 'PG_ONLY'];

/** The instance's Postgres roles for workspace identities. */
export function Roles({ name }: { name: string }) {
  const path = `/api/2.0/database/instances/${seg(name)}/roles`;
  const { data, error, reload } = usePoll(
    () => call<{ database_instance_roles?: Role[] }>('GET', path),
    () => undefined,
    [name],
  );
  const [role, setRole] = useState('');
  const [type, setType] = useState('USER');
  const [superuser, setSuperuser] = useState(false);
  const create = useAction();
  const [deleting, setDeleting] = useState<string>();
  return (
    <section aria-labelledby="roles-title">
      <h2 id="roles-title">Roles</h2>
      <ErrorText error={error} />
      <table class="list">
        <thead>
          <tr>
            <th scope="col">Role</th>
            <th scope="col">Identity type</th>
            <th scope="col">Membership</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(data?.database_instance_roles ?? []).map((r) => (
            <tr key={r.name}>
              <td>{r.name}</td>
              <td>{r.identity_type}</td>
              <td>{r.membership_role ?? '—'}</td>
              <td>
                <button
                  type="button"
                  aria-label={`Delete role ${r.name}`}
                  onClick={() => setDeleting(r.name)}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="inline-form"
        onSubmit={create.onSubmit(async () => {
          await call('POST', path, {
            name: role.trim(),
            identity_type: type,
            ...(superuser ? { membership_role: 'DATABRICKS_SUPERUSER' } : {}),
          });
          setRole('');
          reload();
        })}
      >
        <label for="role-name">Role name</label>
        <input id="role-name" value={role} onInput={(e) => setRole((e.target as HTMLInputElement).value)} />
        <label for="role-type">Identity type</label>
        <select id="role-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          {IDENTITY_TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
        <label class="check">
          <input
            type="checkbox"
            checked={superuser}
            onChange={(e) => setSuperuser((e.target as HTMLInputElement).checked)}
          />
          databricks_superuser
        </label>
        <button type="submit">Create role</button>
      </form>
      <ErrorText error={create.error} />
      {deleting ? (
        <Confirm
          title={`Delete role ${deleting}?`}
          message="The Postgres role is dropped; objects it owns must be reassigned first."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `${path}/${seg(deleting)}`);
            reload();
          }}
          onClose={() => setDeleting(undefined)}
        />
      ) : null}
    </section>
  );
}
