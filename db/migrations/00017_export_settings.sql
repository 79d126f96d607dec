-- The settings that shaped an export's bytes, as values beside their digest `settings_key`
-- (registry/settings_key.ts `exportSettingsDocument`), recorded by the worker that produced the
-- file: the data card names the settings that differ from the deployment's now, instead of
-- only saying that the key differs. Null for exports that never started and those older than
-- this migration (their card says the values were not recorded).
alter table data_exports add column settings jsonb;
