import type { Action } from './actions.js';
import { commitTimestamp, listLog, readCommitActions, versionFileName } from './log.js';
import type { TableStorage } from './storage.js';

/** One commit of a table's history, as `DESCRIBE HISTORY` shows it. */
export interface HistoryEntry {
  version: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** `commitInfo.operation` (WRITE, MERGE, CREATE TABLE, …), when the writer recorded one. */
  operation?: string;
  operationParameters?: Record<string, unknown>;
  operationMetrics?: Record<string, unknown>;
  /** Files added and removed by the commit. */
  addedFiles: number;
  removedFiles: number;
  /** Rows in the added files, from their per-file statistics (undefined when a file has none). */
  addedRows?: number;
}

/**
 * The newest `limit` commits still in the log, newest first. Reads only
 * the commit files (not the checkpoints), so a table's history is as long
 * as its log retention keeps it.
 *
 * @example
 * const history = await readHistory(storageFor('/lake/daily_revenue'), 20);
 */
export async function readHistory(storage: TableStorage, limit: number): Promise<HistoryEntry[]> {
  const listing = await listLog(storage);
  const commits = [...listing.commits.values()].sort((a, b) => b.version - a.version).slice(0, limit);
  return Promise.all(
    commits.map(async (commit) =>
      describeCommit(commit.version, await readCommitActions(storage, commit.file.name), commit.file),
    ),
  );
}

function describeCommit(
  version: number,
  actions: Action[],
  file: Parameters<typeof commitTimestamp>[1],
): HistoryEntry {
  let addedFiles = 0;
  let removedFiles = 0;
  let addedRows: number | undefined = 0;
  let info: Record<string, unknown> | undefined;
  for (const action of actions) {
    if ('add' in action) {
      addedFiles++;
      const records = action.add.stats
        ? (JSON.parse(action.add.stats) as { numRecords?: number }).numRecords
        : undefined;
      addedRows = records === undefined || addedRows === undefined ? undefined : addedRows + records;
    } else if ('remove' in action) removedFiles++;
    else if ('commitInfo' in action) info = action.commitInfo;
  }
  return {
    version,
    timestamp: commitTimestamp(actions, file),
    ...(typeof info?.operation === 'string' ? { operation: info.operation } : {}),
    ...(isRecord(info?.operationParameters) ? { operationParameters: info.operationParameters } : {}),
    ...(isRecord(info?.operationMetrics) ? { operationMetrics: info.operationMetrics } : {}),
    addedFiles,
    removedFiles,
    ...(addedRows !== undefined ? { addedRows } : {}),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * When `version` was committed (ms), from its commit file; undefined once
 * log cleanup removed that file (only a checkpoint is left of it).
 *
 * @example
 * const committedAt = await commitTime(storageFor('/lake/daily_revenue'), 2);
 */
export async function commitTime(storage: TableStorage, version: number): Promise<number | undefined> {
  const name = `${versionFileName(version)}.json`;
  const listed = (await storage.list('_delta_log', versionFileName(version))).find((f) => f.name === name);
  if (!listed) return undefined;
  return commitTimestamp(await readCommitActions(storage, name), listed);
}
