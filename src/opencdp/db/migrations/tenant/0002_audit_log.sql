-- A tenant's schema. Runs with search_path set to this schema (t_<tenant>).

-- Every access of the serving API to this tenant's profiles: which key, what, when. Written
-- in batches by the API as the tenant's role, which may insert here but not change or delete.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    key_id     text NOT NULL,
    action     text NOT NULL
               CHECK (action IN ('profile.read', 'profile.lookup', 'profile.search',
                                 'profile.events', 'profile.orders', 'enrich')),
    profile_id text,
    detail     jsonb NOT NULL DEFAULT '{}'
);

-- Who accessed a profile, and when.
CREATE INDEX audit_log_by_profile ON audit_log (profile_id, at) WHERE profile_id IS NOT NULL;
-- A time range: rows arrive in time order, so a BRIN index stays tiny.
CREATE INDEX audit_log_by_time ON audit_log USING brin (at);
