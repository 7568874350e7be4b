-- botflow on PostgreSQL, schema 1: one node's tables (SCALE-OUT.md §3.2 adapted to the Store trait).
-- Every per-Page row carries `shard` = FNV-1a-64(page id) mod the shard count stored in `meta`,
-- so shard leases can be added later without rewriting rows. Records the runtime reads back
-- whole are `rec jsonb` (the storage crate's serde types); the columns next to them are what
-- queries filter and order by.

CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value jsonb NOT NULL);
INSERT INTO meta (key, value) VALUES ('shard_count', '256'), ('format', '1');

CREATE TABLE pages (
  page_id text COLLATE "C" PRIMARY KEY,
  shard int NOT NULL,
  created_ms bigint NOT NULL
);

CREATE TABLE topics (
  page_id text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  name text COLLATE "C" NOT NULL,
  name_key text COLLATE "C" NOT NULL,
  created_ms bigint NOT NULL,
  deleted_ms bigint,
  PRIMARY KEY (page_id, topic_id)
);
-- a live topic's name is unique on its Page, ignoring case and surrounding spaces
CREATE UNIQUE INDEX topics_live_name ON topics (page_id, name_key) WHERE deleted_ms IS NULL;

CREATE TABLE drafts (
  page_id text COLLATE "C" NOT NULL,
  flow_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, flow_id)
);

CREATE TABLE flow_heads (
  page_id text COLLATE "C" NOT NULL,
  flow_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  name text COLLATE "C" NOT NULL,
  latest int NOT NULL,
  active int NOT NULL,
  PRIMARY KEY (page_id, flow_id)
);

CREATE TABLE flow_versions (
  page_id text COLLATE "C" NOT NULL,
  flow_id text COLLATE "C" NOT NULL,
  version int NOT NULL,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, flow_id, version)
);

-- one row per subscriber the store has seen; `session` is NULL until a step wrote one. Step
-- commits, journal appends and notifications write this row first, so two transactions about
-- one subscriber serialize (its queue order is commit order).
CREATE TABLE subscribers (
  page_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  session jsonb,
  PRIMARY KEY (page_id, psid)
);

CREATE TABLE timers (
  page_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  timer_id bigint NOT NULL,
  due_ms bigint NOT NULL,
  shard int NOT NULL,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, psid, timer_id, due_ms)
);
CREATE INDEX timers_due ON timers (due_ms, page_id, psid, timer_id);

-- OTN tokens; state: 0 usable, 1 spent, 2 invalid, 3 expired (the full state is in rec)
CREATE TABLE tokens (
  page_id text COLLATE "C" NOT NULL,
  token text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  created_ms bigint NOT NULL,
  expires_ms bigint NOT NULL,
  state smallint NOT NULL,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, token)
);
CREATE INDEX tokens_take ON tokens (page_id, psid, topic_id, created_ms, token) WHERE state = 0;
CREATE INDEX tokens_holders ON tokens (page_id, topic_id, psid) WHERE state = 0;
CREATE INDEX tokens_expiry ON tokens (expires_ms) WHERE state = 0;

-- inbound events under their dedup key; `processed_ms` is set by the step commit
CREATE TABLE journal (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  page_id text COLLATE "C" NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  payload jsonb,
  received_ms bigint,
  processed_ms bigint,
  UNIQUE (page_id, event_id)
);
CREATE INDEX journal_todo ON journal (seq) WHERE processed_ms IS NULL;

CREATE SEQUENCE outbox_ids;
-- status: 0 pending, 1 sent, 2 failed, 3 refused, 4 delivered unconfirmed
CREATE TABLE outbox (
  id bigint PRIMARY KEY,
  page_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  status smallint NOT NULL,
  token text COLLATE "C",
  rec jsonb NOT NULL,
  UNIQUE (page_id, token)         -- one token pays for at most one message, structurally
);
CREATE INDEX outbox_pending ON outbox (page_id, psid, id) WHERE status = 0;
CREATE INDEX outbox_by_subscriber ON outbox (page_id, psid, id);

-- the head (oldest pending message) of each subscriber's queue: what is due
CREATE TABLE outbox_heads (
  page_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  head_id bigint NOT NULL,
  due_ms bigint NOT NULL,
  PRIMARY KEY (page_id, psid)
);
CREATE INDEX outbox_heads_due ON outbox_heads (due_ms, head_id);
