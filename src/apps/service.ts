import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import type { IdentityRow } from '../identities/store.js';
import { decodePageToken, encodePageToken, pageSizeOf } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import { unbindDatabases } from './binding.js';
import { appPrincipalExists, createAppPrincipal, deleteAppPrincipal } from './principal.js';
import { ConfigProblem, type DatabaseResource, parseResources, pathText } from './resources.js';
import {
  type AppRow,
  type DeploymentRow,
  deleteAppRow,
  findApp,
  findDeployment,
  insertApp,
  listAppsPage,
  replaceAppPrincipal,
  updateAppSpec,
} from './store.js';

/** An app with its active and pending deployments, as the API shows it. */
export interface AppResult {
  app: AppRow;
  active?: DeploymentRow;
  pending?: DeploymentRow;
  /** Where the running app answers (its DATABRICKS_APP_URL). */
  url?: string;
}

const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$/;
/** The master key's context for an app's sealed OAuth secret. */
export const appSecretContext = (app: Pick<AppRow, 'id'>) => `apps:${app.id}`;

/** Databricks' rule for app names: 2-30 lowercase letters, digits and '-', not starting or ending with '-'. */
function checkAppName(name: unknown): string {
  if (typeof name !== 'string' || name.length < 2 || !NAME_PATTERN.test(name)) {
    throw invalidParameter(
      `App name ${JSON.stringify(name)} is not valid: use 2 to 30 lowercase letters, digits and '-', not starting or ending with '-' (e.g. "feature-flags").`,
    );
  }
  return name;
}

/** Resources of a request body; a problem names the field. */
function resourcesOfBody(raw: unknown): DatabaseResource[] {
  try {
    return parseResources(raw, ['resources']);
  } catch (error) {
    if (error instanceof ConfigProblem) throw invalidParameter(`${pathText(error.path)}: ${error.message}`);
    throw error;
  }
}

/**
 * Loads an app the caller may manage: its creator and admins. Anyone else
 * sees no such app (Pier has no app permissions API yet).
 */
export async function appForCaller(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  lock = false,
  db: Queryable = ctx.store,
): Promise<AppRow> {
  const app = await findApp(db, name, lock);
  if (!app || (!caller.is_admin && app.creator !== caller.user_name)) {
    throw notFound(`App with name ${name} does not exist.`);
  }
  return app;
}

/**
 * The app's service principal, reused while it exists; one deleted through
 * SCIM is replaced (a new client id and secret, and so a new Postgres role
 * at the next binding).
 */
export async function withLivePrincipal(ctx: ControlContext, app: AppRow): Promise<AppRow> {
  if (await appPrincipalExists(ctx, app.client_id)) return app;
  const principal = await createAppPrincipal(ctx, app.name);
  const replaced = await replaceAppPrincipal(ctx.store, app.name, {
    service_principal_id: principal.id,
    client_id: principal.clientId,
    client_secret: ctx.masterKey.seal(principal.secret, appSecretContext(app)),
  });
  if (!replaced) throw notFound(`App with name ${app.name} does not exist.`);
  return replaced;
}

/** The app with its deployments, for a response. */
async function appResult(ctx: ControlContext, app: AppRow): Promise<AppResult> {
  const [active, pending] = await Promise.all([
    app.active_deployment_id ? findDeployment(ctx.store, app.name, app.active_deployment_id) : undefined,
    app.pending_deployment_id ? findDeployment(ctx.store, app.name, app.pending_deployment_id) : undefined,
  ]);
  const port = app.compute === 'ACTIVE' && app.status.app_state === 'RUNNING' ? app.status.port : undefined;
  return { app, active, pending, ...(port ? { url: appUrl(ctx, port) } : {}) };
}

/** `http://<Pier's API host>:<port>`: where an app on this node answers. */
export function appUrl(ctx: ControlContext, port: number): string {
  const host = ctx.endpoints ? new URL(ctx.endpoints.apiUrl).hostname : '127.0.0.1';
  return `http://${host}:${port}`;
}

/**
 * `POST /api/2.0/apps`: `{name, description?, resources?}`; `no_compute`
 * creates it STOPPED. Makes the app's service principal and its OAuth
 * secret (sealed in the store); the app runs on this Pier node.
 */
export async function createApp(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
  query: { no_compute?: string },
): Promise<AppResult> {
  const body = asObject(input, 'The app');
  const name = checkAppName(body.name);
  const description = optionalString(body, 'description') ?? null;
  const resources = resourcesOfBody(body.resources);
  if (await findApp(ctx.store, name)) {
    throw new PierError('RESOURCE_ALREADY_EXISTS', `An app with name ${name} already exists.`);
  }
  const principal = await createAppPrincipal(ctx, name);
  const id = randomUUID();
  try {
    const app = await insertApp(ctx.store, {
      name,
      id,
      description,
      creator: caller.user_name,
      node_id: ctx.config.nodeId,
      service_principal_id: principal.id,
      client_id: principal.clientId,
      client_secret: ctx.masterKey.seal(principal.secret, appSecretContext({ id })),
      resources,
      compute: query.no_compute === 'true' ? 'STOPPED' : 'ACTIVE',
    });
    return appResult(ctx, app);
  } catch (error) {
    // Two creates of one name at once: the loser's service principal goes again.
    await deleteAppPrincipal(ctx, caller, principal.id).catch((e) =>
      noteFailure('apps.principal-cleanup', e),
    );
    if ((error as { code?: string }).code === '23505') {
      throw new PierError('RESOURCE_ALREADY_EXISTS', `An app with name ${name} already exists.`);
    }
    throw error;
  }
}

export async function getApp(ctx: ControlContext, caller: IdentityRow, name: string): Promise<AppResult> {
  return appResult(ctx, await appForCaller(ctx, caller, name));
}

/** Apps in name order, paged (`page_size`, `page_token`); admins see all, others their own. */
export async function listApps(
  ctx: ControlContext,
  caller: IdentityRow,
  query: { page_size?: string; page_token?: string },
): Promise<{ results: AppResult[]; nextPageToken?: string }> {
  const limit = pageSizeOf(query);
  const rows = await listAppsPage(ctx.store, {
    afterName: decodePageToken(query.page_token),
    limit: limit + 1,
    creator: caller.is_admin ? undefined : caller.user_name,
  });
  const page = rows.slice(0, limit);
  const results = await Promise.all(page.map((app) => appResult(ctx, app)));
  return {
    results,
    ...(rows.length > limit ? { nextPageToken: encodePageToken(page[page.length - 1].name) } : {}),
  };
}

/** `PATCH /api/2.0/apps/{name}`: description and resources (a new deployment binds new resources). */
export async function updateApp(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  input: unknown,
): Promise<AppResult> {
  const body = asObject(input, 'The app');
  if (body.name !== undefined && body.name !== name) {
    throw invalidParameter(`An app cannot be renamed ('${name}' to ${JSON.stringify(body.name)}).`);
  }
  await appForCaller(ctx, caller, name);
  const change: Parameters<typeof updateAppSpec>[2] = { updater: caller.user_name };
  if ('description' in body) change.description = optionalString(body, 'description') ?? null;
  if ('resources' in body) change.resources = resourcesOfBody(body.resources);
  const app = await updateAppSpec(ctx.store, name, change);
  if (!app) throw notFound(`App with name ${name} does not exist.`);
  return appResult(ctx, app);
}

/** `POST …/start` and `…/stop`: what the supervisor is to do; the app shows STARTING / STOPPING until it did. */
export async function setAppCompute(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  compute: 'ACTIVE' | 'STOPPED',
): Promise<AppResult> {
  await appForCaller(ctx, caller, name);
  const app = await updateAppSpec(ctx.store, name, { compute, updater: caller.user_name });
  if (!app) throw notFound(`App with name ${name} does not exist.`);
  return appResult(ctx, app);
}

/**
 * Deletes an app: its process is stopped by the supervisor (the row is
 * gone), its service principal is deleted, and its Postgres roles hand what
 * they own to databricks_superuser (kept, never dropped) and go.
 */
export async function deleteApp(ctx: ControlContext, caller: IdentityRow, name: string): Promise<AppResult> {
  const app = await appForCaller(ctx, caller, name);
  const result = await appResult(ctx, app);
  await deleteAppRow(ctx.store, name);
  await unbindDatabases(ctx, caller, app).catch((e) => noteFailure('apps.unbind', e));
  if (app.service_principal_id) {
    await deleteAppPrincipal(ctx, caller, app.service_principal_id).catch((e) =>
      noteFailure('apps.principal-delete', e),
    );
  }
  return result;
}
