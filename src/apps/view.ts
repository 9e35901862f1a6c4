import type { AppResult } from './service.js';
import type { AppState, ComputeState, DeploymentRow } from './store.js';

/**
 * The single mapping from app rows to the JSON of the SDK's `apps` service
 * (`App`, `AppDeployment`).
 */

/** What the compute is, while the supervisor has not yet acted on a start or stop: STARTING / STOPPING. */
function computeStatus({ app }: AppResult): { state: ComputeState; message: string } {
  const observed = app.status.compute_state;
  if (app.compute === 'STOPPED') {
    return observed === 'STOPPED'
      ? { state: 'STOPPED', message: `App is stopped. Start it with: pier apps start ${app.name}` }
      : { state: 'STOPPING', message: 'App is stopping.' };
  }
  if (observed === 'ERROR')
    return { state: 'ERROR', message: app.status.compute_message ?? 'App compute failed.' };
  return observed === 'ACTIVE'
    ? { state: 'ACTIVE', message: 'App compute is running.' }
    : { state: 'STARTING', message: 'App compute is starting.' };
}

function appStatus({ app, pending }: AppResult): { state: AppState; message: string } {
  if (app.compute === 'STOPPED') {
    return { state: 'UNAVAILABLE', message: `App is stopped. Start it with: pier apps start ${app.name}` };
  }
  if (pending && app.status.app_state !== 'RUNNING') {
    return { state: 'DEPLOYING', message: app.status.app_message ?? 'App is being deployed.' };
  }
  if (!app.active_deployment_id && !pending) {
    return {
      state: 'UNAVAILABLE',
      message:
        app.status.app_message ??
        `App has not been deployed yet. Deploy it with: pier apps deploy DIR --name ${app.name}`,
    };
  }
  return { state: app.status.app_state ?? 'UNAVAILABLE', message: app.status.app_message ?? '' };
}

export function deploymentView(row: DeploymentRow) {
  return {
    deployment_id: row.deployment_id,
    source_code_path: row.source_code_path,
    // Pier runs the directory in place: there is no snapshot of it.
    deployment_artifacts: { source_code_path: row.source_code_path },
    mode: row.mode,
    creator: row.creator,
    status: { state: row.state, message: row.message ?? '' },
    create_time: row.created_at.toISOString(),
    update_time: row.updated_at.toISOString(),
  };
}

export function appView(result: AppResult) {
  const { app } = result;
  return {
    name: app.name,
    id: app.id,
    ...(app.description ? { description: app.description } : {}),
    creator: app.creator,
    updater: app.updater,
    create_time: app.created_at.toISOString(),
    update_time: app.updated_at.toISOString(),
    resources: app.resources,
    compute_status: computeStatus(result),
    app_status: appStatus(result),
    ...(result.active ? { active_deployment: deploymentView(result.active) } : {}),
    ...(result.pending ? { pending_deployment: deploymentView(result.pending) } : {}),
    ...(app.default_source_code_path ? { default_source_code_path: app.default_source_code_path } : {}),
    ...(result.url ? { url: result.url } : {}),
    ...(app.service_principal_id ? { service_principal_id: Number(app.service_principal_id) } : {}),
    service_principal_client_id: app.client_id,
    service_principal_name: `app-${app.name}`,
    oauth2_app_client_id: app.client_id,
  };
}
