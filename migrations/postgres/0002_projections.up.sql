-- Read models built by the projections (application/projections). Each row keeps the
-- aggregate's state (for the next event), its rendered resource, the columns lists
-- filter on, and the position of the last event applied to it.
CREATE TABLE IF NOT EXISTS fleet_projection_versions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    rebuilt_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS specialists_projection (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    state BYTEA NOT NULL,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS specialists_projection_status ON specialists_projection (status, id);
CREATE TABLE IF NOT EXISTS specialist_capabilities (
    specialist_id TEXT NOT NULL,
    capability TEXT NOT NULL,
    PRIMARY KEY (specialist_id, capability)
);
CREATE INDEX IF NOT EXISTS specialist_capabilities_capability ON specialist_capabilities (capability, specialist_id);

CREATE TABLE IF NOT EXISTS missions_projection (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    state BYTEA NOT NULL,
    resource TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS missions_projection_status ON missions_projection (status, created_at, id);
CREATE INDEX IF NOT EXISTS missions_projection_priority ON missions_projection (priority, created_at, id);
CREATE INDEX IF NOT EXISTS missions_projection_created ON missions_projection (created_at, id);

CREATE TABLE IF NOT EXISTS sorties_projection (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    mission_id TEXT,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    assigned_to TEXT,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    state BYTEA NOT NULL,
    resource TEXT NOT NULL,
    blocked_by TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sorties_projection_mission ON sorties_projection (mission_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS sorties_projection_status ON sorties_projection (status, created_at, id);
CREATE INDEX IF NOT EXISTS sorties_projection_assigned ON sorties_projection (assigned_to, created_at, id);
CREATE INDEX IF NOT EXISTS sorties_projection_created ON sorties_projection (created_at, id);
CREATE TABLE IF NOT EXISTS sortie_dependencies (
    sortie_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (sortie_id, depends_on)
);
CREATE INDEX IF NOT EXISTS sortie_dependencies_reverse ON sortie_dependencies (depends_on, sortie_id);

CREATE TABLE IF NOT EXISTS checkpoints_projection (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target_stream_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    state BYTEA NOT NULL,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_projection_target ON checkpoints_projection (target_stream_id, created_at, id);
CREATE INDEX IF NOT EXISTS checkpoints_projection_created ON checkpoints_projection (created_at, id);
