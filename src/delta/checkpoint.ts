import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { PierError } from '../errors.js';
import { type Action, actionsFromJsonLines, actionsFromRecord, type Sidecar } from './actions.js';
import type { TableStorage } from './storage.js';

/**
 * Reading checkpoints (PROTOCOL.md, "Checkpoints"): classic single-part and
 * multi-part V1 parquet checkpoints, and V2 checkpoints (classic- or
 * UUID-named, JSON or parquet) whose file actions live in sidecar files in
 * `_delta_log/_sidecars/`.
 */

/** A complete checkpoint chosen for replay: all of its part files. */
export interface Checkpoint {
  version: number;
  /** File names inside `_delta_log`, in part order. */
  parts: string[];
}

const ACTION_COLUMNS = ['add', 'remove', 'metaData', 'protocol', 'sidecar', 'checkpointMetadata'];

/**
 * All actions of a checkpoint, sidecar file actions included.
 *
 * @example
 * const actions = await readCheckpoint(storage, { version: 10, parts: ['00000000000000000010.checkpoint.parquet'] });
 */
export async function readCheckpoint(storage: TableStorage, checkpoint: Checkpoint): Promise<Action[]> {
  const actions: Action[] = [];
  for (const part of checkpoint.parts) {
    const path = `_delta_log/${part}`;
    const partActions = part.endsWith('.json')
      ? await readJsonActions(storage, path)
      : await readParquetActions(storage, path);
    for (const action of partActions) {
      if ('sidecar' in action) {
        actions.push(...(await readParquetActions(storage, sidecarPath(action.sidecar))));
      } else {
        actions.push(action);
      }
    }
  }
  return actions;
}

function sidecarPath(sidecar: Sidecar): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(sidecar.path) || sidecar.path.startsWith('/')) return sidecar.path;
  return `_delta_log/_sidecars/${decodeURIComponent(sidecar.path)}`;
}

async function readJsonActions(storage: TableStorage, path: string): Promise<Action[]> {
  const bytes = await storage.readIfExists(path);
  if (bytes === null) throw missing(storage, path);
  return actionsFromJsonLines(Buffer.from(bytes).toString('utf8'));
}

/** Reads the action columns of a parquet checkpoint part or sidecar. */
async function readParquetActions(storage: TableStorage, path: string): Promise<Action[]> {
  let file: Awaited<ReturnType<TableStorage['openParquet']>>;
  try {
    file = await storage.openParquet(path);
  } catch (error) {
    // Only a file that is not there makes the log incomplete; a path outside the table stays refused.
    if (await storage.exists(path).catch(() => true)) throw error;
    throw missing(storage, path, error);
  }
  const metadata = await parquetMetadataAsync(file);
  const present = new Set(parquetSchema(metadata).children.map((child) => child.element.name));
  const columns = ACTION_COLUMNS.filter((column) => present.has(column));
  if (columns.length === 0) return [];
  const rows = await parquetReadObjects({ file, metadata, columns, compressors, rowFormat: 'object' });
  const actions: Action[] = [];
  for (const row of rows) actions.push(...actionsFromRecord(row));
  return actions;
}

function missing(storage: TableStorage, path: string, cause?: unknown): PierError {
  return new PierError(
    'INVALID_STATE',
    `Delta table at ${storage.location} is missing checkpoint file ${path}; the log is incomplete.`,
    { cause },
  );
}
