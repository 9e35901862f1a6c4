import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, isPierError, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { findInstanceByName } from '../instances/store.js';
import { instanceDnsName } from '../instances/view.js';
import { pageSizeOf } from '../pagination.js';
import { type AppConfig, type EnvEntry, parseAppYaml, readAppYaml } from './app-yaml.js';
import { type BoundDatabase, bindDatabases } from './binding.js';
import { appEnvironment } from './environment.js';
import { mergeResources } from './resources.js';
import { appForCaller, appSecretContext, withLivePrincipal } from './service.js';
import {
  type AppRow,
  type DeploymentRow,
  findDeployment,
  insertDeployment,
  listDeploymentsPage,
  readWorkspaceId,
  updateAppSpec,
} from './store.js';

const MODES = ['SNAPSHOT', 'AUTO_SYNC'];

/** app.yaml of a directory on this node, with the command it runs (`npm run start` by default). */
export async function readAppDirectory(dir: string): Promise<AppConfig & { command: string[] }> {
  if (!isAbsolute(dir)) throw invalidParameter(`source_code_path must be an absolute path, got '${dir}'.`);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw invalidParameter(`source_code_path '${dir}' is not a directory on this Pier node.`);
  }
  const yaml = await readAppYaml(dir);
  const config = yaml ? parseAppYaml(yaml.text, yaml.file) : { env: [], resources: [] };
  if (config.command) return { ...config, command: config.command };
  const pkg = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
  let hasStart = false;
  try {
    hasStart = pkg !== undefined && typeof JSON.parse(pkg)?.scripts?.start === 'string';
  } catch {
    // An unreadable package.json is no start script.
  }
  if (hasStart) return { ...config, command: ['npm', 'run', 'start'] };
  throw invalidParameter(
    `${yaml ? yaml.file : `${dir} has no app.yaml and`} ${yaml ? 'has no command, and ' : ''}package.json has no start script. Add to app.yaml: command: ['node', 'server.js']`,
  );
}

/** The resources app.yaml brings are added to the app's (same name: app.yaml wins). */
async function withConfigResources(ctx: ControlContext, app: AppRow, config: AppConfig, caller: IdentityRow) {
  if (config.resources.length === 0) return app;
  const resources = mergeResources(app.resources, config.resources);
  if (JSON.stringify(resources) === JSON.stringify(app.resources)) return app;
  return (await updateAppSpec(ctx.store, app.name, { resources, updater: caller.user_name })) ?? app;
}

function checkValueFrom(app: AppRow, env: EnvEntry[]): void {
  for (const entry of env) {
    if ('valueFrom' in entry && !app.resources.some((resource) => resource.name === entry.valueFrom)) {
      throw invalidParameter(
        `app.yaml env ${entry.name}: valueFrom '${entry.valueFrom}' names no resource of app '${app.name}' (it has ${app.resources.map((r) => r.name).join(', ') || 'none'}). Add it under resources: in app.yaml, or with --resource ${entry.valueFrom}=<instance name>.`,
      );
    }
  }
}

/**
 * `POST /api/2.0/apps/{name}/deployments` `{source_code_path, mode?}`: reads
 * app.yaml in that directory of this node (a bad file is refused with its
 * line), binds the app's database resources and hands the deployment to
 * the supervisor (IN_PROGRESS until the process listens on its port). A
 * resource that cannot be bound — a stopped instance, a missing permission —
 * makes the deployment FAILED, with the fix in its message.
 */
export async function createDeployment(
  ctx: ControlContext,
  caller: IdentityRow,
  appName: string,
  input: unknown,
): Promise<DeploymentRow> {
  const body = asObject(input, 'The app deployment');
  let app = await appForCaller(ctx, caller, appName);
  const path = optionalString(body, 'source_code_path') ?? app.default_source_code_path;
  if (!path) {
    throw invalidParameter(
      `source_code_path is required: the app's directory on this Pier node, e.g. "/srv/apps/${appName}".`,
    );
  }
  const mode = optionalString(body, 'mode') ?? 'SNAPSHOT';
  if (!MODES.includes(mode))
    throw invalidParameter(`mode '${mode}' is not valid; use SNAPSHOT or AUTO_SYNC.`);
  if (app.compute === 'STOPPED') {
    throw new PierError(
      'INVALID_STATE',
      `App '${appName}' is stopped; start it first with: pier apps start ${appName}, then deploy.`,
    );
  }
  const config = await readAppDirectory(path);
  app = await withLivePrincipal(ctx, await withConfigResources(ctx, app, config, caller));
  checkValueFrom(app, config.env);
  const row = {
    deployment_id: randomUUID().replaceAll('-', ''),
    app_name: appName,
    source_code_path: path,
    mode,
    creator: caller.user_name,
    command: config.command,
    env: config.env,
  };
  try {
    await bindDatabases(ctx, caller, app, app.resources);
  } catch (error) {
    if (!isPierError(error) || error.kind === 'INTERNAL_ERROR') throw error;
    return insertDeployment(ctx.store, { ...row, state: 'FAILED', message: error.message });
  }
  return ctx.store.transaction(async (tx) => {
    const locked = await appForCaller(ctx, caller, appName, true, tx);
    const deployment = await insertDeployment(tx, {
      ...row,
      state: 'IN_PROGRESS',
      message: 'Waiting for the app to start.',
    });
    // A deployment still pending is replaced: the newest one runs.
    if (locked.pending_deployment_id) {
      await tx.query(
        `UPDATE app_deployments SET state = 'CANCELLED', message = 'A newer deployment replaced it.', updated_at = clock_timestamp()
          WHERE deployment_id = $1 AND state = 'IN_PROGRESS'`,
        [locked.pending_deployment_id],
      );
    }
    await updateAppSpec(tx, appName, {
      pending_deployment_id: deployment.deployment_id,
      default_source_code_path: path,
      updater: caller.user_name,
    });
    return deployment;
  });
}

export async function getDeployment(
  ctx: ControlContext,
  caller: IdentityRow,
  appName: string,
  deploymentId: string,
): Promise<DeploymentRow> {
  await appForCaller(ctx, caller, appName);
  const row = await findDeployment(ctx.store, appName, deploymentId);
  if (!row) throw notFound(`Deployment ${deploymentId} of app ${appName} does not exist.`);
  return row;
}

/** Newest first, paged by `page_size` and `page_token` (the last deployment id of the previous page). */
export async function listDeployments(
  ctx: ControlContext,
  caller: IdentityRow,
  appName: string,
  query: { page_size?: string; page_token?: string },
): Promise<{ rows: DeploymentRow[]; nextPageToken?: string }> {
  await appForCaller(ctx, caller, appName);
  const limit = pageSizeOf(query);
  const before = query.page_token ? Buffer.from(query.page_token, 'base64url').toString('utf8') : undefined;
  const rows = await listDeploymentsPage(ctx.store, appName, { before, limit: limit + 1 });
  const page = rows.slice(0, limit);
  const nextPageToken =
    rows.length > limit ? Buffer.from(page[page.length - 1].deployment_id).toString('base64url') : undefined;
  return { rows: page, ...(nextPageToken ? { nextPageToken } : {}) };
}

function requireEndpoints(ctx: ControlContext) {
  if (!ctx.endpoints) throw new PierError('INVALID_STATE', 'Pier is still starting; try again in a moment.');
  return ctx.endpoints;
}

/**
 * `POST /api/2.0/apps/{name}/environment` (Pier's own, for `pier apps run`):
 * binds the app's database resources as a deployment does and returns the
 * environment its command gets (without the port, which the runner picks).
 * The OAuth secret is in it: only the app's creator and admins get it.
 */
export async function runEnvironment(
  ctx: ControlContext,
  caller: IdentityRow,
  appName: string,
  input: unknown,
): Promise<Record<string, string>> {
  const body = asObject(input, 'The request body');
  const app = await withLivePrincipal(ctx, await appForCaller(ctx, caller, appName));
  const env = Array.isArray(body.env) ? (body.env as EnvEntry[]) : [];
  checkValueFrom(app, env);
  const databases = await bindDatabases(ctx, caller, app, app.resources);
  return environmentOf(ctx, app, databases, env);
}

async function environmentOf(ctx: ControlContext, app: AppRow, databases: BoundDatabase[], env: EnvEntry[]) {
  return appEnvironment({
    appName: app.name,
    clientId: app.client_id,
    clientSecret: ctx.masterKey.open(app.client_secret, appSecretContext(app)),
    endpoints: requireEndpoints(ctx),
    workspaceId: await readWorkspaceId(ctx.store),
    databases,
    env,
  });
}

/**
 * The environment of a deployment's process, for the supervisor: the
 * resources were bound when it was made; instances are looked up again for
 * their current host.
 */
export async function deploymentEnvironment(
  ctx: ControlContext,
  app: AppRow,
  deployment: DeploymentRow,
): Promise<Record<string, string>> {
  const databases: BoundDatabase[] = [];
  for (const resource of app.resources) {
    const instance = await findInstanceByName(ctx.store, resource.database.instance_name);
    if (instance) databases.push({ resource, instance, host: instanceDnsName(instance, ctx.config) });
  }
  return environmentOf(ctx, app, databases, deployment.env);
}
