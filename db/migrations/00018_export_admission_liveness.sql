-- Which admitted or waiting exports have a live run (db/export_queue.ts, docs/fair-scheduling.md):
-- `admission_seen_at`, when the export's own workflow last polled for a slot (activity
-- `awaitAdmission`, written at most every 5 s; '-infinity' once an admission it never took was
-- withdrawn; null: not polled yet); `slot_untaken_since`, when it was admitted, until its run
-- takes the slot (its first stage, `resolveExporter`, marks it STARTED). An admission decision
-- returns to PENDING an export whose run has not taken its slot within 30 s (its workflow was
-- terminated meanwhile), and admits no waiting export whose own poll is older than that.
alter table data_exports add column admission_seen_at timestamptz,
  add column slot_untaken_since timestamptz;
