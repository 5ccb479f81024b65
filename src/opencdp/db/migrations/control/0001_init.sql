-- The control schema: what spans tenants. Runs with search_path set to this schema.

-- Every tenant that has a schema of its own (t_<name>) in this database.
CREATE TABLE tenants (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
    schema_name text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per run of a pipeline step: a tap sync, a webhook batch, a transform, a load.
CREATE TABLE pipeline_runs (
    run_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant     text NOT NULL REFERENCES tenants (name),
    source     text NOT NULL,
    kind       text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    status     text NOT NULL DEFAULT 'running'
               CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out')),
    records    bigint NOT NULL DEFAULT 0 CHECK (records >= 0),
    errors     bigint NOT NULL DEFAULT 0 CHECK (errors >= 0),
    details    jsonb NOT NULL DEFAULT '{}',
    -- a run has ended exactly when it is no longer running
    CHECK ((status = 'running') = (ended_at IS NULL)),
    CHECK (ended_at >= started_at)
);

-- The latest runs of a source first: resuming, status pages.
CREATE INDEX pipeline_runs_by_source ON pipeline_runs (tenant, source, started_at DESC);
