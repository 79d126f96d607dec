-- Placeholder so that postgres-shift, which needs contiguous numbers, runs 00010_webhooks.sql on
-- this branch. DELETE THIS FILE when the retention branch's 00009 migration is merged.
select 1;
