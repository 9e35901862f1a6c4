import type { Context } from 'hono';
import type { ControlContext } from '../control/context.js';
import { asObject } from '../control/validate.js';
import { instanceView } from '../instances/view.js';
import {
  createBranch,
  deleteProjectBranch,
  getBranch,
  listProjectBranches,
  undeleteProjectBranch,
  updateProjectBranch,
} from '../postgres/branches.js';
import { generateEndpointCredential } from '../postgres/credentials.js';
import {
  createDatabase,
  deleteBranchDatabase,
  getDatabase,
  listBranchDatabases,
  updateBranchDatabase,
} from '../postgres/databases.js';
import {
  createEndpoint,
  deleteBranchEndpoint,
  getEndpoint,
  listBranchEndpoints,
  updateBranchEndpoint,
} from '../postgres/endpoints.js';
import { notFound, pageOfRows, pageSize } from '../postgres/fields.js';
import { getOperation } from '../postgres/operations.js';
import {
  createProject,
  deleteProject,
  getProject,
  listProjects,
  undeleteProject,
  updateProjectSpec,
} from '../postgres/projects.js';
import { branchRecord, endpointRecord } from '../postgres/records.js';
import { createRole, deleteRole, getRole, listBranchRoles, updateRole } from '../postgres/roles.js';
import { upgradeInstance } from '../postgres/upgrade.js';
import {
  branchView,
  computeInstanceView,
  databaseView,
  endpointView,
  operationView,
  projectView,
  roleView,
} from '../postgres/view.js';
import { type ApiEnv, nextPage, type RouteGroup, readJson } from './request.js';

const BASE = '/api/2.0/postgres';
const P = `${BASE}/projects/:project`;
const B = `${P}/branches/:branch`;

type C = Context<ApiEnv>;

async function body(c: C): Promise<Record<string, unknown>> {
  return asObject(await readJson(c), 'The request body');
}

/** Lakebase Autoscaling: `/api/2.0/postgres/…` (projects, branches, endpoints, databases, roles, credentials, operations). */
export const postgresRoutes: RouteGroup = (app, ctx: ControlContext) => {
  const op = (c: C, row: Parameters<typeof operationView>[0]) => c.json(operationView(row));
  const ids = (c: C) => [c.req.param('project') ?? '', c.req.param('branch') ?? ''] as const;

  // Projects.
  app.post(`${BASE}/projects`, async (c) =>
    op(c, await createProject(ctx, c.var.caller, c.req.query('project_id'), await body(c))),
  );
  app.get(`${BASE}/projects`, async (c) => {
    const { rows, nextPageToken } = await listProjects(ctx, c.var.caller, c.req.query());
    return c.json({ projects: rows.map((row) => projectView(row)), ...nextPage(nextPageToken) });
  });
  app.get(P, async (c) => c.json(projectView(await getProject(ctx, c.var.caller, ids(c)[0]))));
  app.patch(P, async (c) =>
    op(c, await updateProjectSpec(ctx, c.var.caller, ids(c)[0], c.req.query('update_mask'), await body(c))),
  );
  app.delete(P, async (c) => op(c, await deleteProject(ctx, c.var.caller, ids(c)[0], c.req.query())));
  app.post(`${P}/undelete`, async (c) => op(c, await undeleteProject(ctx, c.var.caller, ids(c)[0])));

  // Branches.
  app.post(`${P}/branches`, async (c) =>
    op(
      c,
      await createBranch(ctx, c.var.caller, ids(c)[0], c.req.query('branch_id'), await body(c), {
        replaceExisting: c.req.query('replace_existing') === 'true',
      }),
    ),
  );
  app.get(`${P}/branches`, async (c) => {
    const { project, rows, nextPageToken } = await listProjectBranches(
      ctx,
      c.var.caller,
      ids(c)[0],
      c.req.query(),
    );
    const branches = [];
    for (const row of rows) branches.push(branchView(await branchRecord(ctx, ctx.store, project, row)));
    return c.json({ branches, ...nextPage(nextPageToken) });
  });
  app.get(B, async (c) => {
    const { project, branch } = await getBranch(ctx, c.var.caller, ...ids(c));
    return c.json(branchView(await branchRecord(ctx, ctx.store, project, branch, { size: true })));
  });
  app.patch(B, async (c) =>
    op(c, await updateProjectBranch(ctx, c.var.caller, ...ids(c), c.req.query('update_mask'), await body(c))),
  );
  app.delete(B, async (c) =>
    op(
      c,
      await deleteProjectBranch(ctx, c.var.caller, ...ids(c), {
        purge: c.req.query('purge') === 'true',
        allowMissing: c.req.query('allow_missing') === 'true',
      }),
    ),
  );
  app.post(`${B}/undelete`, async (c) => op(c, await undeleteProjectBranch(ctx, c.var.caller, ...ids(c))));

  // Endpoints.
  app.post(`${B}/endpoints`, async (c) =>
    op(
      c,
      await createEndpoint(ctx, c.var.caller, ...ids(c), c.req.query('endpoint_id'), await body(c), {
        replaceExisting: c.req.query('replace_existing') === 'true',
      }),
    ),
  );
  app.get(`${B}/endpoints`, async (c) => {
    const all = await listBranchEndpoints(ctx, c.var.caller, ...ids(c));
    const { rows, nextPageToken } = pageOfRows(all, (row) => row.endpoint_id, c.req.query(), 100);
    const endpoints = [];
    for (const row of rows) endpoints.push(endpointView(await endpointRecord(ctx, ctx.store, row)));
    return c.json({ endpoints, ...nextPage(nextPageToken) });
  });
  const endpointAt = async (c: C) =>
    endpointRecord(
      ctx,
      ctx.store,
      await getEndpoint(ctx, c.var.caller, ...ids(c), c.req.param('endpoint') ?? ''),
    );
  app.get(`${B}/endpoints/:endpoint`, async (c) => c.json(endpointView(await endpointAt(c))));
  // An endpoint's compute instances: its one server, read-only.
  app.get(`${B}/endpoints/:endpoint/compute-instances`, async (c) => {
    pageSize(c.req.query('page_size'), 1000);
    return c.json({ compute_instances: [computeInstanceView(await endpointAt(c))] });
  });
  app.get(`${B}/endpoints/:endpoint/compute-instances/:id`, async (c) => {
    const compute = computeInstanceView(await endpointAt(c));
    if (compute.compute_instance_id !== c.req.param('id'))
      throw notFound(
        `compute instance not found: ${compute.name.replace(/[^/]+$/, c.req.param('id'))} does not exist.`,
      );
    return c.json(compute);
  });
  app.patch(`${B}/endpoints/:endpoint`, async (c) =>
    op(
      c,
      await updateBranchEndpoint(
        ctx,
        c.var.caller,
        ...ids(c),
        c.req.param('endpoint'),
        c.req.query('update_mask'),
        await body(c),
      ),
    ),
  );
  app.delete(`${B}/endpoints/:endpoint`, async (c) =>
    op(c, await deleteBranchEndpoint(ctx, c.var.caller, ...ids(c), c.req.param('endpoint'))),
  );

  // Databases.
  app.post(`${B}/databases`, async (c) =>
    op(
      c,
      await createDatabase(ctx, c.var.caller, ...ids(c), c.req.query('database_id'), await body(c), {
        replaceExisting: c.req.query('replace_existing') === 'true',
      }),
    ),
  );
  app.get(`${B}/databases`, async (c) => {
    const { branch, databases } = await listBranchDatabases(ctx, c.var.caller, ...ids(c));
    const { rows, nextPageToken } = pageOfRows(databases, (row) => row.database_id, c.req.query(), 100);
    return c.json({ databases: rows.map((row) => databaseView(branch, row)), ...nextPage(nextPageToken) });
  });
  app.get(`${B}/databases/:database`, async (c) => {
    const { branch, database } = await getDatabase(ctx, c.var.caller, ...ids(c), c.req.param('database'));
    return c.json(databaseView(branch, database));
  });
  app.patch(`${B}/databases/:database`, async (c) =>
    op(
      c,
      await updateBranchDatabase(
        ctx,
        c.var.caller,
        ...ids(c),
        c.req.param('database'),
        c.req.query('update_mask'),
        await body(c),
      ),
    ),
  );
  app.delete(`${B}/databases/:database`, async (c) =>
    op(c, await deleteBranchDatabase(ctx, c.var.caller, ...ids(c), c.req.param('database'))),
  );

  // Roles.
  app.post(`${B}/roles`, async (c) =>
    op(
      c,
      await createRole(ctx, c.var.caller, ...ids(c), c.req.query('role_id'), await body(c), {
        replaceExisting: c.req.query('replace_existing') === 'true',
      }),
    ),
  );
  app.get(`${B}/roles`, async (c) => {
    const { branch, roles } = await listBranchRoles(ctx, c.var.caller, ...ids(c));
    const { rows, nextPageToken } = pageOfRows(roles, (row) => row.role_id, c.req.query(), 100);
    return c.json({ roles: rows.map((row) => roleView(branch, row)), ...nextPage(nextPageToken) });
  });
  app.get(`${B}/roles/:role`, async (c) => {
    const { branch, role } = await getRole(ctx, c.var.caller, ...ids(c), c.req.param('role'));
    return c.json(roleView(branch, role));
  });
  app.patch(`${B}/roles/:role`, async (c) =>
    op(
      c,
      await updateRole(
        ctx,
        c.var.caller,
        ...ids(c),
        c.req.param('role'),
        c.req.query('update_mask'),
        await body(c),
      ),
    ),
  );
  app.delete(`${B}/roles/:role`, async (c) =>
    op(
      c,
      await deleteRole(ctx, c.var.caller, ...ids(c), c.req.param('role'), c.req.query('reassign_owned_to')),
    ),
  );

  // The in-place upgrade of a Provisioned instance: answers with the instance, as it is after.
  app.patch('/api/2.0/database/instances/:name/upgrade', async (c) =>
    c.json(
      instanceView(
        await upgradeInstance(ctx, c.var.caller, c.req.param('name')),
        ctx.config,
        ctx.engine.pgMajorVersion,
      ),
    ),
  );

  // Credentials: the token is the Postgres password.
  app.post(`${BASE}/credentials`, async (c) => {
    const { token, expiresAt } = await generateEndpointCredential(ctx, c.var.caller, await readJson(c));
    return c.json({ token, expire_time: expiresAt.toISOString() });
  });

  // Operations: `GET /api/2.0/postgres/{operation name}` (`…/operations/<id>`).
  app.get(`${BASE}/*`, async (c) => {
    const name = decodeURIComponent(new URL(c.req.url).pathname.slice(BASE.length + 1));
    if (!/(^|\/)operations\/[^/]+$/.test(name)) throw notFound(`No resource at ${name}.`);
    return c.json(operationView(await getOperation(ctx, c.var.caller, name)));
  });
};
