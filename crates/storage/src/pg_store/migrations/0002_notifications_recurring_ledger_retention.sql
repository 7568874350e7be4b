-- botflow on PostgreSQL, schema 2: topic notifications, recurring notification tokens, the
-- token ledger (counters kept in the transactions that change tokens, so they outlive the
-- retention sweep) and the columns the retention sweep finds finished records by.

ALTER TABLE outbox ADD COLUMN notification_id bigint;
ALTER TABLE outbox ADD COLUMN finished_ms bigint;
CREATE INDEX outbox_notification_pending ON outbox (notification_id, id)
  WHERE status = 0 AND notification_id IS NOT NULL;
CREATE INDEX outbox_finished ON outbox (finished_ms, id) WHERE status <> 0;

ALTER TABLE tokens ADD COLUMN used_ms bigint;
CREATE INDEX tokens_used ON tokens (used_ms) WHERE state <> 0;

CREATE INDEX journal_processed ON journal (processed_ms, seq) WHERE processed_ms IS NOT NULL;

CREATE SEQUENCE notification_ids;
CREATE TABLE notifications (
  page_id text COLLATE "C" NOT NULL,
  id bigint NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  finished_ms bigint,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, id)
);
CREATE INDEX notifications_finished ON notifications (finished_ms, id) WHERE finished_ms IS NOT NULL;

CREATE TABLE recurring_tokens (
  page_id text COLLATE "C" NOT NULL,
  token text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  rec jsonb NOT NULL,
  PRIMARY KEY (page_id, token)
);

-- the recurring token each subscriber holds now for a topic (active or stopped)
CREATE TABLE recurring_holders (
  page_id text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  psid text COLLATE "C" NOT NULL,
  token text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  PRIMARY KEY (page_id, topic_id, psid)
);

CREATE TABLE ledger (
  page_id text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  shard int NOT NULL,
  issued bigint NOT NULL DEFAULT 0,
  usable bigint NOT NULL DEFAULT 0,
  spent bigint NOT NULL DEFAULT 0,
  expired bigint NOT NULL DEFAULT 0,
  invalidated bigint NOT NULL DEFAULT 0,
  delivered_unconfirmed bigint NOT NULL DEFAULT 0,
  recurring_issued bigint NOT NULL DEFAULT 0,
  recurring_active bigint NOT NULL DEFAULT 0,
  recurring_stopped bigint NOT NULL DEFAULT 0,
  recurring_retired bigint NOT NULL DEFAULT 0,
  recurring_sends bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (page_id, topic_id)
);

CREATE TABLE ledger_days (
  page_id text COLLATE "C" NOT NULL,
  topic_id text COLLATE "C" NOT NULL,
  day bigint NOT NULL,
  opt_ins bigint NOT NULL DEFAULT 0,
  sends bigint NOT NULL DEFAULT 0,
  recurring_opt_ins bigint NOT NULL DEFAULT 0,
  recurring_sends bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (page_id, topic_id, day)
);
