import { useState } from 'preact/hooks';
import { call } from './api';
import { href } from './routes';
import { Badge, Dialog, ErrorText, FormFooter, useAction, usePoll } from './ui';

export interface Instance {
  name: string;
  uid: string;
  state: string;
  capacity: string;
  stopped: boolean;
  creator: string;
  creation_time: string;
  read_write_dns: string;
  pg_version: string;
  retention_window_in_days?: number;
  effective_custom_tags?: { key: string; value: string }[];
  status_message?: string;
}

export const CAPACITIES = ['CU_1', 'CU_2', 'CU_4', 'CU_8'];
const SETTLED = new Set(['AVAILABLE', 'STOPPED', 'FAILED']);

/** Polling: every second while something is changing, every 5 s otherwise (docs/console.md says why). */
export function pollEvery(states: string[]): number {
  return states.some((s) => !SETTLED.has(s)) ? 1000 : 5000;
}

export async function listAllInstances(): Promise<Instance[]> {
  const all: Instance[] = [];
  let token: string | undefined;
  do {
    const page = await call<{ database_instances?: Instance[]; next_page_token?: string }>(
      'GET',
      `/api/2.0/database/instances?page_size=100${token ? `&page_token=${encodeURIComponent(token)}` : ''}`,
    );
    all.push(...(page.database_instances ?? []));
    token = page.next_page_token;
  } while (token);
  return all;
}

export function InstancesPage() {
  const [creating, setCreating] = useState(false);
  const { data, error, reload } = usePoll(listAllInstances, (list) =>
    pollEvery((list ?? []).map((i) => i.state)),
  );
  return (
    <section>
      <div class="title-row">
        <h1 tabIndex={-1}>Database instances</h1>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          Create instance
        </button>
      </div>
      <ErrorText error={error} />
      {data && data.length === 0 ? (
        <p class="muted">No instances yet. Create one to get a Postgres database.</p>
      ) : null}
      {data && data.length > 0 ? (
        <table class="list">
          <caption class="sr-only">Database instances and their state</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Capacity</th>
              <th scope="col" class="wide">
                Host
              </th>
              <th scope="col" class="wide">
                Creator
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((instance) => (
              <tr key={instance.uid} data-instance={instance.name}>
                <td>
                  <a href={href('instances', instance.name)}>{instance.name}</a>
                </td>
                <td>
                  <Badge state={instance.state} />
                </td>
                <td>{instance.capacity}</td>
                <td class="wide">
                  <code>{instance.read_write_dns}</code>
                </td>
                <td class="wide">{instance.creator}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {creating ? (
        <CreateInstance
          onClose={() => setCreating(false)}
          onCreated={(name) => {
            setCreating(false);
            reload();
            location.hash = href('instances', name);
          }}
        />
      ) : null}
    </section>
  );
}

/** The create dialog: the API decides what is valid; its message appears by the form. */
function CreateInstance({ onClose, onCreated }: { onClose: () => void; onCreated: (name: string) => void }) {
  const [name, setName] = useState('');
  const [capacity, setCapacity] = useState('CU_1');
  const [stopped, setStopped] = useState(false);
  const [retention, setRetention] = useState('7');
  const [tags, setTags] = useState('');
  const submit = useAction();
  return (
    <Dialog title="Create a database instance" onClose={onClose}>
      <form
        onSubmit={submit.onSubmit(async () => {
          const custom_tags = tags
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
            .map((t) => {
              const [key, ...value] = t.split('=');
              return { key: key.trim(), value: value.join('=').trim() };
            });
          const created = await call<{ name: string }>('POST', '/api/2.0/database/instances', {
            name,
            capacity,
            stopped,
            ...(retention ? { retention_window_in_days: Number(retention) } : {}),
            ...(custom_tags.length ? { custom_tags } : {}),
          });
          onCreated(created.name);
        })}
      >
        <label for="instance-name">Name</label>
        <input
          id="instance-name"
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
          aria-describedby="instance-name-help"
          autocomplete="off"
        />
        <p id="instance-name-help" class="muted">
          1–63 lower-case letters, digits and hyphens, starting with a letter.
        </p>
        <label for="instance-capacity">Capacity</label>
        <select
          id="instance-capacity"
          value={capacity}
          onChange={(e) => setCapacity((e.target as HTMLSelectElement).value)}
        >
          {CAPACITIES.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <label for="instance-retention">Retention window (days)</label>
        <input
          id="instance-retention"
          inputMode="numeric"
          value={retention}
          onInput={(e) => setRetention((e.target as HTMLInputElement).value)}
        />
        <label for="instance-tags">Tags</label>
        <input
          id="instance-tags"
          placeholder="team=orders, env=dev"
          value={tags}
          onInput={(e) => setTags((e.target as HTMLInputElement).value)}
        />
        <label class="check">
          <input
            type="checkbox"
            checked={stopped}
            onChange={(e) => setStopped((e.target as HTMLInputElement).checked)}
          />
          Create it stopped
        </label>
        <FormFooter action={submit} onCancel={onClose} label="Create" busyLabel="Creating…" />
      </form>
    </Dialog>
  );
}
