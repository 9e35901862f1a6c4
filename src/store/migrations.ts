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
];
