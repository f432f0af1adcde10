-- Custom SQL migration file, put your code below! --
-- The audit entries recorded before the flag history existed: the scheduled handler projects them
-- a slice at a time (src/history/backfill.ts). Entries recorded from now on are projected as they are recorded.
INSERT INTO `history_backfill` (`name`, `upto`, `done_through`) SELECT 'flag_history', coalesce(max(`id`), 0), 0 FROM `audit_entries`;
