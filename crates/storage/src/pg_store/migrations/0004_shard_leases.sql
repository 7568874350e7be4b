-- botflow on PostgreSQL, schema 4: several nodes on one database (SCALE-OUT.md §3.1). Each node
-- heartbeats in `nodes` and holds leases on a fair share of the shards; a lease's `epoch` grows at
-- every change of owner and every owner write transaction checks it (`FOR SHARE`) first, so a
-- node that lost a lease commits nothing. `released_at` (a graceful handover) makes the next
-- owner (another node) wait one second before sending, so a Page's pace holds across the handover.
CREATE TABLE nodes (
  node_id text COLLATE "C" PRIMARY KEY,
  heartbeat_at timestamptz NOT NULL,
  started_at timestamptz NOT NULL
);

CREATE TABLE shard_leases (
  shard int PRIMARY KEY,
  owner text COLLATE "C",
  epoch bigint NOT NULL DEFAULT 0,
  lease_until timestamptz NOT NULL DEFAULT '-infinity',
  released_at timestamptz,
  released_by text COLLATE "C"
) WITH (fillfactor = 50);
INSERT INTO shard_leases (shard)
  SELECT generate_series(0, (SELECT (value #>> '{}')::int FROM meta WHERE key = 'shard_count') - 1);

-- the epoch of the lease each event was processed under and the database's clock when its
-- step committed (audits, the two-node test: per shard, epochs never go back in time)
ALTER TABLE journal ADD COLUMN processed_epoch bigint;
ALTER TABLE journal ADD COLUMN processed_at timestamptz;

-- work is read per owned shard
CREATE INDEX journal_todo_shard ON journal (shard, seq) WHERE processed_ms IS NULL;
CREATE INDEX timers_due_shard ON timers (shard, due_ms);
CREATE INDEX outbox_heads_due_shard ON outbox_heads (shard, due_ms, head_id);

-- the node queuing a topic notification: a node starting closes the queuing cut short by its
-- own stop or by a node that is gone, never a live node's
ALTER TABLE notifications ADD COLUMN queued_by text COLLATE "C";
