import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** An error shown where it happened, read out by screen readers as it appears. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.errorCode : undefined;
  return (
    <p class="error" role="alert">
      {code && code !== 'ERROR' ? <strong>{code}: </strong> : null}
      {message}
    </p>
  );
}

const STATE_TONE: Record<string, string> = {
  AVAILABLE: 'ok',
  ONLINE: 'ok',
  ACTIVE: 'ok',
  READY: 'ok',
  INIT: 'busy',
  IDLE: 'idle',
  DISABLED: 'idle',
  DEGRADED: 'bad',
  STARTING: 'busy',
  UPDATING: 'busy',
  STOPPING: 'busy',
  DELETING: 'busy',
  PROVISIONING: 'busy',
  STOPPED: 'idle',
  FAILED: 'bad',
  RUNNING: 'ok',
  NOT_RESPONDING: 'bad',
};

/** A state as a coloured badge; the text carries the meaning, the colour only repeats it. */
export function Badge({ state }: { state: string }) {
  const short = state.replace(/^SYNCED_TABLE_/, '');
  const tone =
    STATE_TONE[short] ??
    (short.includes('FAILED')
      ? 'bad'
      : short.startsWith('ONLINE') && !short.includes('TRIGGERED_UPDATE')
        ? 'ok'
        : short.includes('PROVISIONING') || short.includes('UPDATE')
          ? 'busy'
          : 'idle');
  return (
    <span class={`badge ${tone}`} data-state={state}>
      {short.replaceAll('_', ' ')}
    </span>
  );
}

/** A modal dialog (the native <dialog>: focus stays inside, Esc closes it). */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dialog-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const dialog = ref.current!;
    if (!dialog.open) dialog.showModal();
    const close = () => props.onClose();
    dialog.addEventListener('close', close);
    return () => dialog.removeEventListener('close', close);
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/**
 * The foot of a dialog's form: the action's error where it happened, Cancel,
 * and the submit button, which says what is under way while it runs.
 */
export function FormFooter(props: {
  action: { busy: boolean; error: unknown };
  onCancel: () => void;
  label: string;
  busyLabel: string;
}) {
  return (
    <>
      <ErrorText error={props.action.error} />
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={props.action.busy}>
          {props.action.busy ? props.busyLabel : props.label}
        </button>
      </div>
    </>
  );
}

/** A confirmation for an action that changes or removes something. */
export function Confirm(props: {
  title: string;
  message: ComponentChildren;
  action: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const confirm = useAction();
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <div>{props.message}</div>
      <ErrorText error={confirm.error} />
      <div class="actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? 'danger' : 'primary'}
          disabled={confirm.busy}
          onClick={() =>
            confirm.run(async () => {
              await props.onConfirm();
              props.onClose();
            })
          }
        >
          {confirm.busy ? 'Working…' : props.action}
        </button>
      </div>
    </Dialog>
  );
}

/** A value with a button that copies it; says so when it did. */
export function Copyable({ label, value, testId }: { label: string; value: string; testId?: string }) {
  const [copied, setCopied] = useState<string>();
  return (
    <div class="copyable">
      <span class="copy-label">{label}</span>
      <code data-testid={testId}>{value}</code>
      <button
        type="button"
        aria-label={`Copy ${label}`}
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(value);
            setCopied('Copied');
          } catch {
            setCopied('Copy failed: select the text instead');
          }
          setTimeout(() => setCopied(undefined), 2000);
        }}
      >
        Copy
      </button>
      <span role="status" class="muted">
        {copied ?? ''}
      </span>
    </div>
  );
}

/**
 * Calls `load` now and then every `everyMs` (which may change with the
 * data, e.g. faster while something is in progress); the page shows the
 * latest data and the latest error.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  everyMs: (data: T | undefined) => number | undefined,
  deps: unknown[] = [],
): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  // Another resource (the deps changed): never show the last one's data meanwhile.
  useEffect(() => {
    setData(undefined);
    setError(undefined);
  }, deps);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      let next: T | undefined;
      try {
        next = await load();
        if (stopped) return;
        setData(next);
        setError(undefined);
      } catch (e) {
        if (stopped) return;
        setError(e);
      }
      const wait = everyMs(next);
      if (wait !== undefined && !stopped) timer = setTimeout(run, wait);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatTime(iso: string | number | undefined): string {
  if (iso === undefined) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/**
 * One user action's progress and error: `run` marks it busy, clears the
 * last error and keeps the new one for the page to show where it happened.
 *
 * @example
 * const save = useAction();
 * <form onSubmit={save.onSubmit(() => call('POST', path, body))}>… <ErrorText error={save.error} />
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const onSubmit = (work: () => Promise<unknown>) => (event: Event) => {
    event.preventDefault();
    void run(work);
  };
  return { busy, error, run, onSubmit };
}
