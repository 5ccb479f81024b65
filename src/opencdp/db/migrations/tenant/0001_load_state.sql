-- A tenant's schema. Runs with search_path set to this schema (t_<tenant>).

-- The Iceberg snapshot of each curated table that was last loaded into this schema, so that
-- the loader skips an unchanged table and reads only what changed since.
CREATE TABLE load_state (
    table_name  text PRIMARY KEY,
    snapshot_id bigint NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);
