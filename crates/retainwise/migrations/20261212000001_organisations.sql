-- Organisations and roles. Every record belongs to an organisation: the owner column of each
-- table (`user_id`; `owner_id` of models, `scope` of active_models) holds the owning
-- organisation's id from now on. A user's personal organisation has the user's id as its id,
-- so every existing row — owned by a user id until now — belongs to its user's personal
-- organisation as it stands (no row is rewritten and no object moves: object folders are
-- the owner id's, `OrgId::folder`). Portable SQL: runs as is on SQLite and Postgres.

-- personal_user_id: the user whose personal organisation this is (its id equals theirs);
-- NULL for a team (an identity provider's organisation or one the operator made).
CREATE TABLE IF NOT EXISTS organisations (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    personal_user_id TEXT,
    created_at       BIGINT NOT NULL
);

-- A user's role in an organisation. A user may be a member of several (an identity provider's
-- token names the one it acts in); without such a claim the most recently joined team wins,
-- else the personal organisation.
CREATE TABLE IF NOT EXISTS memberships (
    org_id     TEXT NOT NULL REFERENCES organisations (id),
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'analyst', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user ON memberships (user_id, created_at);

-- A personal organisation, owned by its user, for every user that owns anything today.
INSERT INTO organisations (id, name, personal_user_id, created_at)
SELECT owner, owner, owner, 0 FROM (
    SELECT user_id AS owner FROM uploads
    UNION SELECT user_id FROM predictions
    UNION SELECT user_id FROM model_trainings
    UNION SELECT user_id FROM api_keys
    UNION SELECT user_id FROM web_sessions
    UNION SELECT user_id FROM webhook_endpoints
    UNION SELECT user_id FROM direct_uploads
    UNION SELECT owner_id FROM models WHERE owner_id IS NOT NULL
    UNION SELECT scope FROM active_models WHERE scope <> '*'
) AS owners;
INSERT INTO memberships (org_id, user_id, role, created_at)
SELECT id, id, 'owner', created_at FROM organisations;

-- An API key acts in one organisation with one role (at most its creator's current role
-- there, when the creator is a member). Existing keys: their user's personal organisation,
-- as owner — what they could do until now.
ALTER TABLE api_keys ADD COLUMN org_id TEXT;
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner'
    CHECK (role IN ('owner', 'admin', 'analyst', 'viewer'));
UPDATE api_keys SET org_id = user_id;

-- A web session acts in the organisation its credential named at sign-in.
ALTER TABLE web_sessions ADD COLUMN org_id TEXT;
UPDATE web_sessions SET org_id = user_id;
