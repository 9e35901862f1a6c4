/**
 * Numbered schema migrations of the control-plane store. Append only: a
 * migration that has shipped is never edited; fix forward with a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'identities, tokens, instances, permissions',
    sql: `
      CREATE TABLE identities (
        id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY,
        user_name text NOT NULL UNIQUE,
        display_name text,
        kind text NOT NULL DEFAULT 'USER',
        is_admin boolean NOT NULL DEFAULT false,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE personal_access_tokens (
        token_id text PRIMARY KEY,
        identity_id bigint NOT NULL REFERENCES identities ON DELETE CASCADE,
        token_hash text NOT NULL UNIQUE,
        comment text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz
      );

      -- spec: what the user asked for (only the API writes it).
      -- status: what the reconciler observed (only the reconciler writes it).
      CREATE TABLE instances (
        uid uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        creator text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        spec jsonb NOT NULL,
        generation bigint NOT NULL DEFAULT 1,
        state text NOT NULL,
        status jsonb NOT NULL DEFAULT '{}',
        observed_generation bigint NOT NULL DEFAULT 0,
        address inet UNIQUE,
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE instance_permissions (
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        principal text NOT NULL,
        permission_level text NOT NULL,
        PRIMARY KEY (instance_uid, principal)
      );

      CREATE TABLE settings (
        key text PRIMARY KEY,
        value jsonb NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'catalogs, schemas, tables, grants, lineage',
    sql: `
      -- Unity Catalog objects. Names are stored lower-case (UC names are case-insensitive).
      -- A database catalog (MANAGED_ONLINE_CATALOG) points at a Postgres database of an
      -- instance; its schemas and tables are read live from that database, never stored here.
      CREATE TABLE catalogs (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        catalog_type text NOT NULL,
        comment text,
        properties jsonb NOT NULL DEFAULT '{}',
        storage_root text,
        owner text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL,
        instance_uid uuid REFERENCES instances ON DELETE CASCADE,
        database_name text,
        CHECK ((instance_uid IS NULL) = (database_name IS NULL))
      );

      CREATE TABLE catalog_schemas (
        id uuid PRIMARY KEY,
        catalog_id uuid NOT NULL REFERENCES catalogs ON DELETE CASCADE,
        name text NOT NULL,
        comment text,
        properties jsonb NOT NULL DEFAULT '{}',
        owner text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL,
        UNIQUE (catalog_id, name)
      );

      CREATE TABLE catalog_tables (
        id uuid PRIMARY KEY,
        schema_id uuid NOT NULL REFERENCES catalog_schemas ON DELETE CASCADE,
        name text NOT NULL,
        table_type text NOT NULL,
        data_source_format text NOT NULL,
        storage_location text NOT NULL,
        columns jsonb NOT NULL,
        comment text,
        properties jsonb NOT NULL DEFAULT '{}',
        owner text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL,
        UNIQUE (schema_id, name)
      );

      -- One row per (securable, principal, privilege); exactly one securable column is set,
      -- so deleting the object deletes its grants.
      CREATE TABLE catalog_grants (
        catalog_id uuid REFERENCES catalogs ON DELETE CASCADE,
        schema_id uuid REFERENCES catalog_schemas ON DELETE CASCADE,
        table_id uuid REFERENCES catalog_tables ON DELETE CASCADE,
        securable_id uuid GENERATED ALWAYS AS (coalesce(catalog_id, schema_id, table_id)) STORED,
        principal text NOT NULL,
        privilege text NOT NULL,
        CHECK (num_nonnulls(catalog_id, schema_id, table_id) = 1),
        UNIQUE (securable_id, principal, privilege)
      );

      -- Table-level lineage by three-part name: the edge outlives either end, as in Databricks.
      CREATE TABLE table_lineage (
        source_name text NOT NULL,
        target_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source_name, target_name)
      );
      CREATE INDEX table_lineage_target ON table_lineage (target_name);
    `,
  },
  {
    version: 3,
    name: 'signing keys, database credential requests, instance roles',
    sql: `
      -- Keys that sign database credentials. Retired keys still verify the
      -- tokens they signed until those expire.
      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        private_jwk jsonb NOT NULL,
        public_jwk jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz
      );

      -- request_id idempotency: the same caller and id get the same token while it is valid.
      CREATE TABLE credential_requests (
        request_id text PRIMARY KEY,
        identity_id bigint NOT NULL REFERENCES identities ON DELETE CASCADE,
        instance_uids uuid[] NOT NULL,
        token text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX credential_requests_expiry ON credential_requests (expires_at);

      -- What the Roles API recorded about a Postgres role (the role itself lives in the instance).
      CREATE TABLE instance_roles (
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        name text NOT NULL,
        identity_type text NOT NULL,
        membership_role text,
        attributes jsonb NOT NULL DEFAULT '{}',
        created_by text NOT NULL,
        PRIMARY KEY (instance_uid, name)
      );
    `,
  },
  {
    version: 4,
    name: 'instances belong to the Pier node that runs them',
    sql: `
      -- Several Pier processes may share one store; each runs the instances
      -- whose node_id is its own (NULL: not yet claimed, e.g. made before this column).
      ALTER TABLE instances ADD COLUMN node_id text;
      CREATE INDEX instances_node ON instances (node_id);
    `,
  },
  {
    version: 6,
    name: 'external locations, their grants, resolved table paths',
    sql: `
      -- Unity Catalog external locations: admin-made directories under which
      -- EXTERNAL tables may be registered. url is what the admin gave (a file://
      -- URL); path is its realpath, which every check compares against. No two
      -- locations overlap.
      CREATE TABLE external_locations (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        url text NOT NULL,
        path text NOT NULL UNIQUE,
        credential_name text,
        comment text,
        read_only boolean NOT NULL DEFAULT false,
        owner text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL
      );

      -- Grants on external locations (CREATE_EXTERNAL_TABLE, READ_FILES) live with
      -- the other catalog grants: one more securable column, and securable_id and its
      -- checks made again to include it.
      ALTER TABLE catalog_grants
        ADD COLUMN external_location_id uuid REFERENCES external_locations ON DELETE CASCADE;
      ALTER TABLE catalog_grants DROP CONSTRAINT catalog_grants_check;
      ALTER TABLE catalog_grants DROP COLUMN securable_id;
      ALTER TABLE catalog_grants ADD COLUMN securable_id uuid
        GENERATED ALWAYS AS (coalesce(catalog_id, schema_id, table_id, external_location_id)) STORED;
      ALTER TABLE catalog_grants ADD CONSTRAINT catalog_grants_one_securable
        CHECK (num_nonnulls(catalog_id, schema_id, table_id, external_location_id) = 1);
      ALTER TABLE catalog_grants ADD CONSTRAINT catalog_grants_securable_principal_privilege_key
        UNIQUE (securable_id, principal, privilege);

      -- The resolved directory of each table: no two tables may overlap. Tables
      -- registered earlier keep the path they were registered with.
      ALTER TABLE catalog_tables ADD COLUMN storage_path text;
      UPDATE catalog_tables
         SET storage_path = coalesce(nullif(rtrim(
               regexp_replace(regexp_replace(storage_location, '^file://[^/]*', ''), '^file:', ''), '/'), ''), '/');
      ALTER TABLE catalog_tables ALTER COLUMN storage_path SET NOT NULL;
    `,
  },
  {
    version: 7,
    name: 'secrets sealed by the master key; credential request ids per identity',
    sql: `
      -- Private signing keys are kept sealed (AES-256-GCM, see src/auth/master-key.ts);
      -- Pier seals rows of older versions on start and then clears private_jwk.
      ALTER TABLE signing_keys ALTER COLUMN private_jwk DROP NOT NULL;
      ALTER TABLE signing_keys ADD COLUMN sealed_private_jwk jsonb;
      ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_private_once
        CHECK (num_nonnulls(private_jwk, sealed_private_jwk) = 1);

      -- A request_id belongs to the caller that sent it: one user's id never
      -- reaches another user's token. Rows of older versions hold plain tokens;
      -- they only serve retries within one credential lifetime, so they go.
      DELETE FROM credential_requests;
      ALTER TABLE credential_requests DROP CONSTRAINT credential_requests_pkey;
      ALTER TABLE credential_requests ADD PRIMARY KEY (identity_id, request_id);
      ALTER TABLE credential_requests DROP COLUMN token;
      ALTER TABLE credential_requests ADD COLUMN sealed_token jsonb NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'change notifications for caches; leases on work; instance state written by the reconciler only',
    sql: `
      -- Caches (the proxy's routing table, active identities, signing keys) reload
      -- when their table changes, in any Pier process sharing the store: each
      -- change to one NOTIFYs its channel, once per transaction (see src/store/notifications.ts).
      CREATE FUNCTION pier_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_ARGV[0], '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER instances_changed AFTER INSERT OR UPDATE OR DELETE ON instances
        FOR EACH ROW EXECUTE FUNCTION pier_notify_change('pier_instances_changed');
      CREATE TRIGGER identities_changed AFTER INSERT OR UPDATE OR DELETE ON identities
        FOR EACH ROW EXECUTE FUNCTION pier_notify_change('pier_identities_changed');
      CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
        FOR EACH ROW EXECUTE FUNCTION pier_notify_change('pier_signing_keys_changed');

      -- Who works on what until when (src/store/leases.ts): the reconciler per
      -- instance, sync workers per pipeline.
      CREATE TABLE leases (
        resource text NOT NULL,
        key text NOT NULL,
        holder text,
        expires_at timestamptz,
        PRIMARY KEY (resource, key)
      );

      -- A new instance is STARTING until the reconciler says otherwise; the API
      -- writes only the spec.
      ALTER TABLE instances ALTER COLUMN state SET DEFAULT 'STARTING';
    `,
  },
  {
    version: 9,
    name: 'synced tables, their pipelines and the history of pipeline updates',
    sql: `
      -- A pipeline is the durable job that keeps its synced tables up to date; several
      -- tables may share one (existing_pipeline_id). The sync worker of the Pier node
      -- that runs the instance claims it with the lease ('sync_pipeline', id).
      CREATE TABLE sync_pipelines (
        id uuid PRIMARY KEY,
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        database_name text NOT NULL,
        creator text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        -- Consecutive failed passes: the worker's backoff before the next try.
        failures integer NOT NULL DEFAULT 0
      );

      -- status is written by the sync worker only; the API writes the rest.
      CREATE TABLE synced_tables (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        database_name text NOT NULL,
        target_schema text NOT NULL,
        target_table text NOT NULL,
        spec jsonb NOT NULL,
        source_table_full_name text NOT NULL,
        source_location text NOT NULL,
        pipeline_id uuid NOT NULL REFERENCES sync_pipelines,
        status jsonb NOT NULL DEFAULT '{}',
        creator text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (instance_uid, database_name, target_schema, target_table)
      );
      CREATE INDEX synced_tables_source ON synced_tables (source_table_full_name);
      CREATE INDEX synced_tables_pipeline ON synced_tables (pipeline_id);

      -- Each requested run of a pipeline (the pipelines API's updates), oldest first.
      -- QUEUED ones are the worker's to-do list; not_before delays a retry.
      CREATE TABLE sync_pipeline_updates (
        id uuid PRIMARY KEY,
        pipeline_id uuid NOT NULL REFERENCES sync_pipelines ON DELETE CASCADE,
        state text NOT NULL DEFAULT 'QUEUED',
        full_refresh boolean NOT NULL DEFAULT false,
        cause text NOT NULL,
        message text,
        not_before timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        started_at timestamptz,
        ended_at timestamptz
      );
      CREATE INDEX sync_pipeline_updates_pipeline ON sync_pipeline_updates (pipeline_id, created_at);

      -- A schema of a standard catalog may show a Postgres schema of an instance's
      -- database (pier database register-database-instance into an existing catalog).
      ALTER TABLE catalog_schemas
        ADD COLUMN instance_uid uuid REFERENCES instances ON DELETE CASCADE,
        ADD COLUMN database_name text,
        ADD CHECK ((instance_uid IS NULL) = (database_name IS NULL));
    `,
  },
  {
    version: 10,
    name: 'database tables registered in the catalog; continuous runs in the pipeline update history',
    sql: `
      -- An existing Postgres table of an instance, shown in the catalog under a
      -- three-part name (POST /api/2.0/database/tables). Unregistering never drops it.
      CREATE TABLE database_tables (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        database_name text NOT NULL,
        target_schema text NOT NULL,
        target_table text NOT NULL,
        creator text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      -- A continuous run (one row while a CONTINUOUS pipeline follows its sources)
      -- is history, never a queued update for the worker to run.
      ALTER TABLE sync_pipeline_updates ADD COLUMN continuous boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 11,
    name: 'OAuth secrets of service principals',
    sql: `
      -- A service principal is an identity of kind SERVICE_PRINCIPAL whose user_name is
      -- its application id (a UUID): the OAuth client id and its Postgres role name.
      -- secret_hash is HMAC-SHA256 of the secret under a key derived from the master
      -- key (auth/master-key.ts); the secret itself is never stored.
      CREATE TABLE oauth_secrets (
        id uuid PRIMARY KEY,
        identity_id bigint NOT NULL REFERENCES identities ON DELETE CASCADE,
        secret_hash text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz
      );
      CREATE INDEX oauth_secrets_identity ON oauth_secrets (identity_id);
    `,
  },
  {
    version: 12,
    name: 'apps and their deployments',
    sql: `
      -- An app: what was asked (resources, compute ACTIVE or STOPPED, the deployment to run)
      -- and, in status, what the supervisor of its node observed (process, port, restarts).
      -- Only the supervisor writes status. client_secret is the app's OAuth secret, sealed
      -- by the master key: the supervisor gives it to the app's process on every start.
      CREATE TABLE apps (
        name text PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        description text,
        creator text NOT NULL,
        updater text NOT NULL,
        node_id text NOT NULL,
        service_principal_id bigint REFERENCES identities ON DELETE SET NULL,
        client_id text NOT NULL,
        client_secret jsonb NOT NULL,
        resources jsonb NOT NULL DEFAULT '[]',
        compute text NOT NULL DEFAULT 'ACTIVE' CHECK (compute IN ('ACTIVE', 'STOPPED')),
        active_deployment_id text,
        pending_deployment_id text,
        default_source_code_path text,
        status jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX apps_node ON apps (node_id);

      -- Each deployment: the directory and the app.yaml it was made from, and how it went.
      CREATE TABLE app_deployments (
        deployment_id text PRIMARY KEY,
        app_name text NOT NULL REFERENCES apps ON DELETE CASCADE,
        source_code_path text NOT NULL,
        mode text NOT NULL,
        creator text NOT NULL,
        command jsonb NOT NULL,
        env jsonb NOT NULL,
        state text NOT NULL,
        message text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX app_deployments_app ON app_deployments (app_name, created_at);
    `,
  },
  {
    version: 15,
    name: 'console sessions, instance metrics, synced-table passes',
    sql: `
      -- A signed-in browser: the session id is only ever stored as its SHA-256. A session
      -- lives no longer than the personal access token it was exchanged for (revoking the
      -- token ends it). csrf_token is sent back in a header on every state-changing call.
      CREATE TABLE console_sessions (
        id_hash text PRIMARY KEY,
        token_id text NOT NULL REFERENCES personal_access_tokens ON DELETE CASCADE,
        csrf_token text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

      -- Samples of each running instance's pg_stat_database, taken by Pier every ~15 s and
      -- kept for a day. Counters are cumulative as Postgres reports them; rates are computed
      -- between samples when read.
      CREATE TABLE instance_metric_samples (
        instance_uid uuid NOT NULL REFERENCES instances ON DELETE CASCADE,
        sampled_at timestamptz NOT NULL,
        connections integer NOT NULL,
        transactions bigint NOT NULL,
        database_bytes bigint NOT NULL,
        blocks_hit bigint NOT NULL,
        blocks_read bigint NOT NULL,
        PRIMARY KEY (instance_uid, sampled_at)
      );
      CREATE INDEX instance_metric_samples_time ON instance_metric_samples (sampled_at);

      -- Each finished pass of a synced table: how many rows it wrote and how far behind the
      -- source's commit it ended (the console's rows-synced and lag charts). Kept for a day.
      CREATE TABLE synced_table_passes (
        synced_table_id uuid NOT NULL REFERENCES synced_tables ON DELETE CASCADE,
        ended_at timestamptz NOT NULL,
        rows_synced bigint NOT NULL,
        delta_version bigint NOT NULL,
        lag_ms bigint,
        duration_ms integer NOT NULL
      );
      CREATE INDEX synced_table_passes_table ON synced_table_passes (synced_table_id, ended_at);
    `,
  },
  {
    version: 13,
    name: 'WAL archives and base backups',
    sql: `
      -- One per instance that has (or had) a WAL archive. Outlives the instance row:
      -- a deleted instance's archive is kept until its retention window has passed.
      CREATE TABLE backup_archives (
        instance_uid uuid PRIMARY KEY,
        instance_name text NOT NULL,
        node_id text NOT NULL,
        retention_window_in_days int NOT NULL,
        deleted_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      -- The catalog of base backups; the bytes are in the backup storage.
      CREATE TABLE base_backups (
        backup_id text PRIMARY KEY,
        instance_uid uuid NOT NULL REFERENCES backup_archives ON DELETE CASCADE,
        trigger text NOT NULL,
        timeline int NOT NULL,
        start_lsn pg_lsn NOT NULL,
        stop_lsn pg_lsn NOT NULL,
        start_wal_file text NOT NULL,
        started_at timestamptz NOT NULL,
        stopped_at timestamptz NOT NULL,
        size_bytes bigint NOT NULL
      );
      CREATE INDEX base_backups_instance ON base_backups (instance_uid, stopped_at);
    `,
  },
  {
    version: 16,
    name: 'read-only addresses of instances with readable secondaries',
    sql: `
      -- read_only_dns: a second loopback address per instance, routed by the proxy to a
      -- streaming secondary. Kept once given, so the name a client configured stays valid.
      ALTER TABLE instances ADD COLUMN read_only_address inet UNIQUE;
    `,
  },
  {
    version: 14,
    name: 'Lakebase Autoscaling: projects, branches, endpoints, databases, roles and their operations',
    sql: `
      -- A project owns branches; a branch owns one instance (its data directory and
      -- the server its read-write endpoint runs); endpoints name that server (or a standby).
      CREATE TABLE autoscaling_projects (
        uid uuid PRIMARY KEY,
        project_id text NOT NULL UNIQUE,
        owner text NOT NULL,
        spec jsonb NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now(),
        update_time timestamptz NOT NULL DEFAULT now(),
        delete_time timestamptz,
        purge_time timestamptz
      );

      CREATE TABLE autoscaling_branches (
        uid uuid PRIMARY KEY,
        project_uid uuid NOT NULL REFERENCES autoscaling_projects ON DELETE CASCADE,
        branch_id text NOT NULL,
        spec jsonb NOT NULL,
        instance_uid uuid NOT NULL,
        source_branch text,
        source_branch_lsn text,
        source_branch_time timestamptz,
        expire_time timestamptz,
        create_time timestamptz NOT NULL DEFAULT now(),
        update_time timestamptz NOT NULL DEFAULT now(),
        delete_time timestamptz,
        purge_time timestamptz,
        UNIQUE (project_uid, branch_id)
      );

      CREATE TABLE autoscaling_endpoints (
        uid uuid PRIMARY KEY,
        host_id text NOT NULL UNIQUE,
        branch_uid uuid NOT NULL REFERENCES autoscaling_branches ON DELETE CASCADE,
        endpoint_id text NOT NULL,
        spec jsonb NOT NULL,
        instance_uid uuid NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now(),
        update_time timestamptz NOT NULL DEFAULT now(),
        UNIQUE (branch_uid, endpoint_id)
      );

      CREATE TABLE autoscaling_databases (
        branch_uid uuid NOT NULL REFERENCES autoscaling_branches ON DELETE CASCADE,
        database_id text NOT NULL,
        postgres_database text NOT NULL,
        role_id text NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now(),
        update_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (branch_uid, database_id)
      );

      CREATE TABLE autoscaling_roles (
        branch_uid uuid NOT NULL REFERENCES autoscaling_branches ON DELETE CASCADE,
        role_id text NOT NULL,
        spec jsonb NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now(),
        update_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (branch_uid, role_id)
      );

      -- Long-running operations: done once the instance waited for reaches wait_state
      -- (or is gone, for 'GONE'); response and error are the Operation's JSON.
      CREATE TABLE autoscaling_operations (
        name text PRIMARY KEY,
        owner text NOT NULL,
        metadata_type text NOT NULL,
        resource_name text NOT NULL,
        wait_instance uuid,
        wait_state text,
        done boolean NOT NULL DEFAULT false,
        response jsonb,
        error jsonb,
        create_time timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 17,
    name: 'instances that are Autoscaling computes only (not listed by the Provisioned API)',
    sql: `
      ALTER TABLE instances ADD COLUMN autoscaling boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 18,
    name: 'Pier nodes: where each one reaches its instances, and whether it is alive',
    sql: `
      -- One row per Pier process that ever ran on this store (its data dir's node id).
      -- heartbeat_at is renewed every second while it runs; stopped_at is set by a clean stop.
      CREATE TABLE nodes (
        node_id text PRIMARY KEY,
        reach jsonb NOT NULL,
        api_url text,
        pid integer NOT NULL,
        -- When that process started (Linux: /proc/<pid>/stat starttime), so a reused pid is told apart.
        pid_start text,
        pier_version text NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL,
        stopped_at timestamptz
      );
    `,
  },
];
