import { listInstanceBackups, requestBackup } from '../backups/service.js';
import { baseBackupsView, baseBackupView } from '../backups/view.js';
import type { RouteGroup } from './request.js';

/** Pier's own `/api/2.0/database/instances/{name}/backups` (Databricks has no backups API). */
export const backupRoutes: RouteGroup = (app, ctx) => {
  app.get('/api/2.0/database/instances/:name/backups', async (c) => {
    const { instance, backups } = await listInstanceBackups(ctx, c.var.caller, c.req.param('name'));
    return c.json(baseBackupsView(instance, backups));
  });

  app.post('/api/2.0/database/instances/:name/backups', async (c) => {
    const { instance, backup } = await requestBackup(ctx, c.var.caller, c.req.param('name'));
    return c.json(baseBackupView(instance, backup));
  });
};
