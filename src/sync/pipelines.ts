import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalInteger } from '../control/validate.js';
import { invalidParameter, notFound } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { permissionOn } from '../instances/permissions.js';
import { findInstanceByUid } from '../instances/store.js';
import {
  findPipeline,
  insertUpdate,
  listUpdates,
  type PipelineRow,
  type PipelineUpdateRow,
} from './pipelines-store.js';
import { listSyncedTablesOfPipeline, type SyncedTableRow } from './store.js';

/** A pipeline with its tables and newest updates, for the view. */
export interface PipelineRecord {
  pipeline: PipelineRow;
  tables: SyncedTableRow[];
  latestUpdates: PipelineUpdateRow[];
}

/** The pipeline, if the caller holds CAN_USE on its instance (else it does not exist for them). */
async function loadPipeline(ctx: ControlContext, caller: IdentityRow, id: string): Promise<PipelineRow> {
  const pipeline = await findPipeline(ctx.store, id);
  const instance = pipeline ? await findInstanceByUid(ctx.store, pipeline.instance_uid) : undefined;
  if (!pipeline || !instance || !(await permissionOn(ctx.store, caller, instance))) {
    throw notFound(`Pipeline '${id}' does not exist.`);
  }
  return pipeline;
}

/** `GET /api/2.0/pipelines/{pipeline_id}`. */
export async function getPipeline(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
): Promise<PipelineRecord> {
  const pipeline = await loadPipeline(ctx, caller, id);
  return {
    pipeline,
    tables: await listSyncedTablesOfPipeline(ctx.store, pipeline.id),
    latestUpdates: await listUpdates(ctx.store, pipeline.id, 5),
  };
}

/**
 * `POST /api/2.0/pipelines/{pipeline_id}/updates`: queues a run of every
 * table of the pipeline (`full_refresh` re-snapshots them). The sync
 * worker of the instance's node picks it up.
 */
export async function startPipelineUpdate(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
  input: unknown,
): Promise<PipelineUpdateRow> {
  const body = asObject(input, 'The update');
  const pipeline = await loadPipeline(ctx, caller, id);
  if (Array.isArray(body.refresh_selection) || Array.isArray(body.full_refresh_selection)) {
    throw invalidParameter(
      'refresh_selection and full_refresh_selection are not supported: an update runs every table of the pipeline.',
    );
  }
  return insertUpdate(ctx.store, {
    id: randomUUID(),
    pipeline_id: pipeline.id,
    full_refresh: optionalBoolean(body, 'full_refresh') ?? false,
    cause: 'API_CALL',
  });
}

/** `GET /api/2.0/pipelines/{pipeline_id}/updates`: newest first, paged by `page_token`. */
export async function listPipelineUpdates(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
  query: Record<string, string | undefined>,
): Promise<{ updates: PipelineUpdateRow[]; nextPageToken?: string }> {
  const pipeline = await loadPipeline(ctx, caller, id);
  const size = Math.min(optionalInteger(query, 'max_results') ?? 25, 100);
  if (size < 1) throw invalidParameter('max_results must be at least 1.');
  let before: Date | undefined;
  if (query.page_token) {
    const micros = Number(Buffer.from(query.page_token, 'base64url').toString('utf8').replace(/^u:/, ''));
    if (!Number.isFinite(micros))
      throw invalidParameter('page_token is invalid; pass the next_page_token of the previous page.');
    before = new Date(micros);
  }
  const rows = await listUpdates(ctx.store, pipeline.id, size + 1, before);
  const updates = rows.slice(0, size);
  const more = rows.length > size;
  return {
    updates,
    ...(more
      ? {
          nextPageToken: Buffer.from(`u:${updates[updates.length - 1].created_at.getTime()}`).toString(
            'base64url',
          ),
        }
      : {}),
  };
}
