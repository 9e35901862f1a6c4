import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { commitTime, storageFor } from '../delta/index.js';
import { isPierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByUid, type InstanceRow } from '../instances/store.js';
import { pierMetrics } from '../metrics/registry.js';
import { insertSyncPass } from '../metrics/store.js';
import type { Store } from '../store/store.js';
import { SyncFailure } from './failure.js';
import { type SyncOutcome, syncOnce } from './pipeline.js';
import {
  cancelOrphanedContinuousRuns,
  insertUpdate,
  lastContinuousRunState,
  markUpdate,
  nextDueUpdate,
  type PipelineRow,
  setPipelineFailures,
} from './pipelines-store.js';
import { ensureSyncRoles } from './roles.js';
import * as status from './status.js';
import { listSyncedTablesOfPipeline, type SyncedTableRow, updateSyncedTableStatus } from './store.js';
import { readProgress } from './target.js';
import { type LogWatcher, watchDeltaLog } from './watch.js';

/** Retry delays after consecutive failures: 1 s, 2 s, 4 s … at most 60 s. */
function backoffMs(failures: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
}
/** Progress of a running snapshot is written at most this often. */
const PROGRESS_EVERY_MS = 500;

/**
 * Runs one pipeline while this process holds its lease: the due updates
 * (SNAPSHOT and TRIGGERED tables, and full refreshes), and for CONTINUOUS
 * tables a pass on every new Delta commit. One pass at a time; a request
 * that arrives meanwhile runs right after. A failed pass is the table's
 * failed state with its message, retried with backoff until it heals.
 */
export class PipelineRunner {
  private running = false;
  private again = false;
  private stopped = false;
  private readonly watchers = new Map<string, LogWatcher>();
  private retry: NodeJS.Timeout | undefined;
  private continuousFailures = 0;
  /** No continuous pass before this time (ms): the backoff after a failed one. */
  private retryAt = 0;
  private client: pg.Client | undefined;
  /** The open continuous run: one history row per run, not one per commit. */
  private continuousRun: { id: string; passes: number } | undefined;
  /** The Delta version each table was last synced to by this runner, for the run's message. */
  private readonly versions = new Map<string, number>();

  /**
   * @param connection how to reach a database of the pipeline's instance as
   *   its superuser, wherever it runs (nodes/service.ts instanceConnection).
   * @param options.holder this node: its sessions are named after it
   *   (`syncSessionName`), and status is written only while it holds the lease.
   * @param options.takenFrom the node that held the lease before (it died or
   *   hung): its sessions on the instance are ended first, so a transaction
   *   it left open cannot hold the progress row's lock against this one.
   */
  constructor(
    readonly pipeline: PipelineRow,
    private readonly store: Store,
    private readonly connection: (instance: InstanceRow, database: string) => Promise<pg.ClientConfig>,
    private readonly options: { holder: string; takenFrom?: string },
  ) {}

  private setStatus(tableId: string, patch: Parameters<typeof updateSyncedTableStatus>[2]): Promise<void> {
    return updateSyncedTableStatus(this.store, tableId, patch, this.options.holder);
  }

  /** Set when continuous tables may be behind (a commit, a retry, the start). */
  private continuousDue = true;

  /**
   * Asks for a pass: due updates are looked at, and with `continuous` the
   * continuous tables are brought up to date too.
   */
  poke(continuous = false): void {
    if (this.stopped) return;
    if (continuous) this.continuousDue = true;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.work()
      .catch((error) => noteFailure('sync.pass', error))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Stops after the pass under way; `why` ends the open continuous run's history row. */
  async stop(
    why = 'Stopped with this Pier process; the next run goes on from the last synced version.',
  ): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 20));
    await this.endContinuousRun('CANCELED', why).catch((e) => noteFailure('sync.run', e));
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }

  private async work(): Promise<void> {
    const tables = await listSyncedTablesOfPipeline(this.store, this.pipeline.id);
    this.followCommits(tables.filter((t) => t.spec.scheduling_policy === 'CONTINUOUS'));
    const due = await nextDueUpdate(this.store, this.pipeline.id);
    if (due) {
      await markUpdate(this.store, due.id, 'RUNNING');
      const error = await this.syncAll(tables, due.full_refresh, true);
      if (this.stopped) return;
      if (error) {
        const failures = this.pipeline.failures + 1;
        this.pipeline.failures = failures;
        await markUpdate(this.store, due.id, 'FAILED', { message: error });
        await setPipelineFailures(this.store, this.pipeline.id, failures);
        await insertUpdate(this.store, {
          id: randomUUID(),
          pipeline_id: this.pipeline.id,
          full_refresh: due.full_refresh,
          cause: 'RETRY_ON_FAILURE',
          delayMs: backoffMs(failures),
        });
      } else {
        await markUpdate(this.store, due.id, 'COMPLETED');
        if (this.pipeline.failures > 0) {
          this.pipeline.failures = 0;
          await setPipelineFailures(this.store, this.pipeline.id, 0);
        }
      }
      return;
    }
    const continuous = tables.filter((t) => t.spec.scheduling_policy === 'CONTINUOUS');
    if (continuous.length === 0) {
      await this.endContinuousRun('COMPLETED', 'The pipeline has no CONTINUOUS tables any more.');
      return;
    }
    if (!this.continuousDue) return;
    // After a failure the backoff decides when to try again, not every commit or poll.
    if (Date.now() < this.retryAt) return;
    this.continuousDue = false;
    await this.openContinuousRun();
    const error = await this.syncAll(continuous, false, false);
    if (this.stopped) return;
    if (error) {
      await this.endContinuousRun('FAILED', error);
      this.continuousFailures++;
      const delay = backoffMs(this.continuousFailures);
      this.retryAt = Date.now() + delay;
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.poke(true), delay);
    } else {
      this.continuousFailures = 0;
      this.retryAt = 0;
      await this.recordContinuousPass(continuous);
    }
  }

  /**
   * A continuous run is one row of the pipeline's update history, opened by
   * the first pass that follows the sources: after the table was created or
   * its policy changed (cause API_CALL), after a failed run (RETRY_ON_FAILURE)
   * or after the Pier process that ran it died, stopped or handed it to
   * another node (INFRASTRUCTURE_MAINTENANCE).
   */
  private async openContinuousRun(): Promise<void> {
    if (this.continuousRun) return;
    // The last run stopped with its process, or was handed between nodes: this one carries it on.
    const carriedOn = (await lastContinuousRunState(this.store, this.pipeline.id)) === 'CANCELED';
    const orphaned = await cancelOrphanedContinuousRuns(this.store, this.pipeline.id);
    const cause =
      this.continuousFailures > 0
        ? 'RETRY_ON_FAILURE'
        : orphaned > 0 || carriedOn
          ? 'INFRASTRUCTURE_MAINTENANCE'
          : 'API_CALL';
    const row = await insertUpdate(this.store, {
      id: randomUUID(),
      pipeline_id: this.pipeline.id,
      full_refresh: false,
      cause,
      state: 'RUNNING',
      continuous: true,
    });
    this.continuousRun = { id: row.id, passes: 0 };
  }

  /** Each pass rewrites the run's message: how many passes, and where each table is. */
  private async recordContinuousPass(tables: SyncedTableRow[]): Promise<void> {
    const run = this.continuousRun;
    if (!run) return;
    run.passes++;
    const where = tables
      .filter((t) => this.versions.has(t.name))
      .map((t) => `${t.name} at Delta version ${this.versions.get(t.name)}`)
      .join(', ');
    await markUpdate(this.store, run.id, 'RUNNING', {
      message: `Following the source: ${run.passes} ${run.passes === 1 ? 'pass' : 'passes'} in this run; ${where}.`,
    });
  }

  private async endContinuousRun(state: 'COMPLETED' | 'FAILED' | 'CANCELED', message: string): Promise<void> {
    const run = this.continuousRun;
    if (!run) return;
    this.continuousRun = undefined;
    await markUpdate(this.store, run.id, state, { message });
  }

  /** Watches the source of every continuous table (and stops watching tables that are gone). */
  private followCommits(tables: SyncedTableRow[]): void {
    const wanted = new Set(tables.map((t) => t.source_location));
    for (const [location, watcher] of this.watchers) {
      if (!wanted.has(location)) {
        watcher.close();
        this.watchers.delete(location);
      }
    }
    for (const location of wanted) {
      if (this.watchers.has(location)) continue;
      this.watchers.set(
        location,
        watchDeltaLog(location, () => this.poke(true), { onError: (e) => noteFailure('sync.watch', e) }),
      );
    }
  }

  /** Brings every table up to date; returns the first failure's message, if any. */
  private async syncAll(
    tables: SyncedTableRow[],
    fullRefresh: boolean,
    triggered: boolean,
  ): Promise<string | undefined> {
    let firstError: string | undefined;
    for (const table of tables) {
      if (this.stopped) return firstError;
      const error = await this.syncTable(table, fullRefresh, triggered);
      firstError ??= error;
    }
    return firstError;
  }

  private async syncTable(
    table: SyncedTableRow,
    fullRefresh: boolean,
    triggered: boolean,
  ): Promise<string | undefined> {
    const start = new Date();
    const target = { schema: table.target_schema, table: table.target_table };
    let client: pg.Client | undefined;
    // Until Postgres says otherwise (it may be unreachable): synced before if the status says so.
    let everSynced = table.status.last_sync !== undefined;
    let lastVersion: number | undefined;
    // Progress is written in order and always before the final status, never after it.
    let progressWrites = Promise.resolve();
    try {
      client = await this.connect(table);
      const before = await readProgress(client, target).catch(() => undefined);
      everSynced ||= before !== undefined;
      lastVersion = before?.deltaVersion;
      if (triggered && everSynced) {
        await this.setStatus(table.id, status.updating(table.spec.scheduling_policy, table.status));
      }
      const roles = await ensureSyncRoles(client, table.database_name, table.target_schema);
      let lastWrite = 0;
      let outcome: SyncOutcome;
      let refresh = fullRefresh;
      let rowsWritten = 0;
      // Incremental passes apply at most 100 versions each: go on until the table is current.
      for (;;) {
        outcome = await syncOnce(
          client,
          {
            location: table.source_location,
            sourceName: table.source_table_full_name,
            target,
            primaryKey: table.spec.primary_key_columns,
            ...(table.spec.timeseries_key ? { timeseriesKey: table.spec.timeseries_key } : {}),
            policy: table.spec.scheduling_policy,
          },
          {
            fullRefresh: refresh,
            owner: roles.writer,
            readers: [roles.reader],
            onProgress: (syncedRows, total) => {
              // A continuous pass is the run's; a triggered one after the first sync reports its own progress.
              if ((everSynced && !triggered) || Date.now() - lastWrite < PROGRESS_EVERY_MS) return;
              lastWrite = Date.now();
              const patch = everSynced
                ? status.updating(table.spec.scheduling_policy, table.status, { synced: syncedRows, total })
                : status.snapshotRunning(syncedRows, total);
              progressWrites = progressWrites
                .then(() => this.setStatus(table.id, patch))
                .catch((e) => noteFailure('sync.progress', e));
            },
          },
        );
        refresh = false;
        if (outcome.kind !== 'changes' || this.stopped) break;
        rowsWritten += rowsOf(outcome);
      }
      await progressWrites;
      const after = await readProgress(client, target);
      const end = new Date();
      await this.setStatus(
        table.id,
        status.synced(
          table.spec.scheduling_policy,
          outcome,
          {
            start,
            end,
            ...(after?.deltaCommitTimestamp ? { commitTimestamp: after.deltaCommitTimestamp } : {}),
          },
          table.status,
        ),
      );
      this.versions.set(table.name, outcome.deltaVersion);
      await this.recordPass(table, { start, end, rows: rowsWritten + rowsOf(outcome), outcome, after });
      return undefined;
    } catch (error) {
      await progressWrites;
      const message = await this.describe(table, error);
      if (!(error instanceof SyncFailure)) {
        // The connection may be broken: the next pass opens a new one.
        await this.client?.end().catch(() => {});
        this.client = undefined;
      }
      await this.setStatus(table.id, status.failed(message, everSynced, lastVersion)).catch((e) =>
        noteFailure('sync.status', e),
      );
      pierMetrics.syncPasses.observe(
        { policy: table.spec.scheduling_policy, outcome: 'failed' },
        (Date.now() - start.getTime()) / 1000,
      );
      return message;
    }
  }

  /** A finished pass, for the console's charts (rows and lag over time) and `/metrics`. */
  private async recordPass(
    table: SyncedTableRow,
    pass: {
      start: Date;
      end: Date;
      rows: number;
      outcome: SyncOutcome;
      after?: { deltaCommitTimestamp?: Date };
    },
  ): Promise<void> {
    const durationMs = pass.end.getTime() - pass.start.getTime();
    pierMetrics.syncPasses.observe(
      { policy: table.spec.scheduling_policy, outcome: 'synced' },
      durationMs / 1000,
    );
    // A pass that found nothing new says nothing about lag or rows: only real work is charted.
    if (pass.outcome.kind === 'up-to-date' && pass.rows === 0) return;
    const commit =
      pass.after?.deltaCommitTimestamp?.getTime() ??
      (await commitTime(storageFor(table.source_location), pass.outcome.deltaVersion).catch((e) => {
        noteFailure('sync.commit-time', e);
        return undefined;
      }));
    await insertSyncPass(this.store, table.id, {
      endedAt: pass.end,
      rows: pass.rows,
      deltaVersion: pass.outcome.deltaVersion,
      ...(commit !== undefined ? { lagMs: Math.max(0, pass.end.getTime() - commit) } : {}),
      durationMs,
    }).catch((e) => noteFailure('sync.record-pass', e));
  }

  /** What the failed table's status says: a SyncFailure's own message, else the cause in plain words. */
  private async describe(table: SyncedTableRow, error: unknown): Promise<string> {
    if (error instanceof SyncFailure || isPierError(error)) return (error as Error).message;
    noteFailure('sync.table', error);
    const instance = await findInstanceByUid(this.store, table.instance_uid).catch(() => undefined);
    const state = instance ? reportedState(instance) : 'DELETED';
    if (state !== 'AVAILABLE') {
      return `Database instance '${instance?.name ?? table.instance_uid}' is ${state}; the synced table catches up by itself once it is AVAILABLE again.`;
    }
    return `The sync could not finish: ${(error as Error).message}. It is retried with backoff.`;
  }

  private async connect(table: SyncedTableRow): Promise<pg.Client> {
    if (this.client) return this.client;
    const instance = await findInstanceByUid(this.store, table.instance_uid);
    const state = instance ? reportedState(instance) : 'DELETED';
    if (!instance || state !== 'AVAILABLE') {
      throw new SyncFailure(
        'INSTANCE_UNAVAILABLE',
        `Database instance '${instance?.name ?? table.instance_uid}' is ${state}; the synced table catches up by itself once it is AVAILABLE again.`,
        false,
      );
    }
    const open = async (database: string) => {
      const client = new pg.Client({
        ...(await this.connection(instance, database)),
        application_name: syncSessionName(this.options.holder),
      });
      client.on('error', () => {
        if (this.client === client) this.client = undefined;
      });
      await client.connect();
      if (this.options.takenFrom) await endSessionsOf(client, this.options.takenFrom);
      return client;
    };
    try {
      this.client = await open(table.database_name);
    } catch (error) {
      if ((error as { code?: string }).code !== '3D000') throw error;
      if (!table.spec.create_database_objects_if_missing) {
        throw new SyncFailure(
          'DATABASE_MISSING',
          `Database '${table.database_name}' does not exist in instance '${instance.name}'. Create it (or create the synced table with create_database_objects_if_missing = true); the sync then starts by itself.`,
          false,
        );
      }
      const admin = await open('postgres');
      try {
        await admin
          .query(`CREATE DATABASE ${pg.escapeIdentifier(table.database_name)} OWNER databricks_superuser`)
          .catch((e: { code?: string }) => {
            if (e.code !== '42P04') throw e; // made meanwhile by another pipeline
          });
      } finally {
        await admin.end().catch(() => {});
      }
      this.client = await open(table.database_name);
    }
    return this.client;
  }
}

/** The application_name of a node's sync sessions (at most 63 bytes: a node id is 36). */
function syncSessionName(node: string): string {
  return `pier-sync ${node}`;
}

/**
 * Ends every sync session of `node` on this server: after a takeover, a
 * transaction the dead or hung node left open would otherwise hold the
 * progress row's lock (and so the pipeline) until that process went away.
 * Its work is rolled back, never half applied; the new holder does it again.
 */
async function endSessionsOf(client: pg.Client, node: string): Promise<void> {
  await client.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [syncSessionName(node)],
  );
}

/** Rows a pass wrote: the snapshot's rows, or the changes applied. */
function rowsOf(outcome: SyncOutcome): number {
  if (outcome.kind === 'snapshot') return outcome.rows;
  if (outcome.kind === 'changes') return outcome.changes;
  return 0;
}
