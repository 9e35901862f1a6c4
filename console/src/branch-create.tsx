import { useState } from 'preact/hooks';
import { call, seg } from './api';
import { PG } from './projects';
import { Dialog, FormFooter, useAction } from './ui';

/** `datetime-local`'s value for a time, in the browser's zone, to the second. */
function localInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function CreateBranch(props: {
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
        <FormFooter action={submit} onCancel={props.onClose} label="Create" busyLabel="Creating…" />
      </form>
    </Dialog>
  );
}
