-- botflow on PostgreSQL, schema 3: rows `Store::flush` updates in a synchronous commit. A commit
-- waits for the WAL flush only when its transaction wrote WAL before its commit record (taking
-- an xid alone is not enough), and that flush covers every earlier asynchronous commit; 16 rows
-- so concurrent flushes rarely touch the same one.
CREATE TABLE flush_marks (slot smallint PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO flush_marks (slot) SELECT generate_series(0, 15);
