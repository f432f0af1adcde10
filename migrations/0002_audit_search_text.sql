ALTER TABLE `audit_entries` ADD `search_text` text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Entries recorded before this column existed: SQLite's lower() folds ASCII only, which is what search did then.
UPDATE `audit_entries` SET `search_text` = lower(`log`);
