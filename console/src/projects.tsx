import { useState } from 'preact/hooks';
import { call } from './api';
import { href } from './routes';
import { Dialog, ErrorText, FormFooter, formatTime, useAction, usePoll } from './ui';

/** Lakebase Autoscaling's JSON (`/api/2.0/postgres`): resources report their `status`. */
export interface Project {
  name: string;
  uid: string;
  create_time: string;
  status: {
    display_name: string;
    pg_version: number;
    owner: string;
    default_branch: string;
    history_retention_duration: string;
    default_endpoint_settings: CuSettings;
  };
}

export interface CuSettings {
  autoscaling_limit_min_cu: number;
  autoscaling_limit_max_cu: number;
  suspend_timeout_duration?: string;
  no_suspension?: boolean;
}

export const PG = '/api/2.0/postgres';

/** The last segment of a resource name: `projects/shop/branches/dev` → `dev`. */
export function idOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export function cuRange(s: CuSettings): string {
  const { autoscaling_limit_min_cu: min, autoscaling_limit_max_cu: max } = s;
  return min === max ? `${min} CU` : `${min}–${max} CU`;
}

/** The API's duration (`"604800s"`) in the largest whole unit: `7 days`, `5 min`, `90 s`. */
export function formatDuration(duration: string): string {
  const total = Number.parseFloat(duration);
  for (const [size, unit] of [
    [86400, 'day'],
    [3600, 'h'],
    [60, 'min'],
  ] as const) {
    if (total >= size && total % size === 0) {
      const n = total / size;
      return unit === 'day' ? `${n} day${n === 1 ? '' : 's'}` : `${n} ${unit}`;
    }
  }
  return `${total} s`;
}

export function suspension(s: CuSettings): string {
  return s.suspend_timeout_duration ? `after ${formatDuration(s.suspend_timeout_duration)} idle` : 'never';
}

async function listAllProjects(): Promise<Project[]> {
  const all: Project[] = [];
  let token: string | undefined;
  do {
    const page = await call<{ projects?: Project[]; next_page_token?: string }>(
      'GET',
      `${PG}/projects?page_size=100${token ? `&page_token=${encodeURIComponent(token)}` : ''}`,
    );
    all.push(...(page.projects ?? []));
    token = page.next_page_token;
  } while (token);
  return all;
}

export function ProjectsPage() {
  const [creating, setCreating] = useState(false);
  const { data, error } = usePoll(listAllProjects, () => 5000);
  return (
    <section>
      <div class="title-row">
        <h1 tabIndex={-1}>Autoscaling projects</h1>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          Create project
        </button>
      </div>
      <ErrorText error={error} />
      {data && data.length === 0 ? (
        <p class="muted">
          No projects yet. A project is a Postgres database with branches and endpoints that scale to zero.
        </p>
      ) : null}
      {data && data.length > 0 ? (
        <table class="list">
          <caption class="sr-only">Autoscaling projects</caption>
          <thead>
            <tr>
              <th scope="col">Project</th>
              <th scope="col">Compute</th>
              <th scope="col" class="wide">
                Scale to zero
              </th>
              <th scope="col" class="wide">
                Owner
              </th>
              <th scope="col" class="wide">
                Created
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((p) => (
              <tr key={p.uid} data-project={idOf(p.name)}>
                <td>
                  <a href={href('projects', idOf(p.name))}>{idOf(p.name)}</a>
                  {p.status.display_name && p.status.display_name !== idOf(p.name) ? (
                    <span class="muted"> {p.status.display_name}</span>
                  ) : null}
                </td>
                <td>{cuRange(p.status.default_endpoint_settings)}</td>
                <td class="wide">{suspension(p.status.default_endpoint_settings)}</td>
                <td class="wide">{p.status.owner}</td>
                <td class="wide">{formatTime(p.create_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {creating ? (
        <CreateProject
          onClose={() => setCreating(false)}
          onCreated={(id) => {
            setCreating(false);
            location.hash = href('projects', id);
          }}
        />
      ) : null}
    </section>
  );
}

/** Compute units and scale to zero, as the API takes them in `spec` (shared by the project and endpoint forms). */
export function SizingFields(props: {
  idPrefix: string;
  value: { min: string; max: string; suspend: string };
  onChange: (next: { min: string; max: string; suspend: string }) => void;
}) {
  const { idPrefix: id, value, onChange } = props;
  const field = (key: 'min' | 'max' | 'suspend') => (e: Event) =>
    onChange({ ...value, [key]: (e.target as HTMLInputElement).value });
  return (
    <>
      <div class="pair">
        <div>
          <label for={`${id}-min`}>Minimum CU</label>
          <input id={`${id}-min`} inputMode="decimal" value={value.min} onInput={field('min')} />
        </div>
        <div>
          <label for={`${id}-max`}>Maximum CU</label>
          <input id={`${id}-max`} inputMode="decimal" value={value.max} onInput={field('max')} />
        </div>
      </div>
      <label for={`${id}-suspend`}>Suspend after idle (seconds)</label>
      <input
        id={`${id}-suspend`}
        inputMode="numeric"
        value={value.suspend}
        onInput={field('suspend')}
        aria-describedby={`${id}-suspend-help`}
      />
      <p id={`${id}-suspend-help`} class="muted">
        Empty: never suspend. 0.5–64 CU in steps of 0.5; at most 16 CU between minimum and maximum.
      </p>
    </>
  );
}

/** The form's sizing as the API's spec fields; the API judges the values. */
export function sizingSpec(value: { min: string; max: string; suspend: string }): Record<string, unknown> {
  return {
    autoscaling_limit_min_cu: Number(value.min),
    autoscaling_limit_max_cu: Number(value.max),
    ...(value.suspend.trim()
      ? { suspend_timeout_duration: `${value.suspend.trim()}s` }
      : { no_suspension: true }),
  };
}

function CreateProject({ onClose, onCreated }: { onClose: () => void; onCreated: (id: string) => void }) {
  const [id, setId] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [sizing, setSizing] = useState({ min: '0.5', max: '2', suspend: '' });
  const submit = useAction();
  return (
    <Dialog title="Create a project" onClose={onClose}>
      <form
        onSubmit={submit.onSubmit(async () => {
          await call('POST', `${PG}/projects?project_id=${encodeURIComponent(id)}`, {
            spec: {
              display_name: displayName || id,
              default_endpoint_settings: sizingSpec(sizing),
            },
          });
          onCreated(id);
        })}
      >
        <label for="project-id">Project id</label>
        <input
          id="project-id"
          value={id}
          onInput={(e) => setId((e.target as HTMLInputElement).value)}
          aria-describedby="project-id-help"
          autocomplete="off"
        />
        <p id="project-id-help" class="muted">
          1–63 lower-case letters, digits and hyphens, starting with a letter.
        </p>
        <label for="project-display-name">Display name</label>
        <input
          id="project-display-name"
          value={displayName}
          onInput={(e) => setDisplayName((e.target as HTMLInputElement).value)}
        />
        <SizingFields idPrefix="project" value={sizing} onChange={setSizing} />
        <FormFooter action={submit} onCancel={onClose} label="Create" busyLabel="Creating…" />
      </form>
    </Dialog>
  );
}
