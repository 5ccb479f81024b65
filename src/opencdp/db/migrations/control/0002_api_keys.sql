-- API keys of the serving API (opencdp serve). Runs with search_path set to this schema.
-- A token reads ocdp_<key_id>_<secret>; only the SHA-256 of the secret is kept, so a token
-- is shown once, when its key is created. Scopes: profiles:read, events:read, admin (which
-- implies the others).
CREATE TABLE api_keys (
    key_id        text PRIMARY KEY CHECK (key_id ~ '^[a-z2-7]{12}$'),
    tenant        text NOT NULL REFERENCES tenants (name),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes        text[] NOT NULL
                  CHECK (cardinality(scopes) > 0
                         AND array_position(scopes, NULL) IS NULL
                         AND scopes <@ ARRAY['profiles:read', 'events:read', 'admin']),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    CHECK (revoked_at >= created_at)
);

-- `opencdp keys list --tenant T`
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
