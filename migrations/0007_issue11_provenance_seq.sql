CREATE TABLE `audit_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`org_id` integer NOT NULL,
	`tree_size` integer NOT NULL,
	`root_hash` text NOT NULL,
	`note` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_checkpoints_org` ON `audit_checkpoints` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_checkpoints_size` ON `audit_checkpoints` (`org_id`,`tree_size`,`id`);--> statement-breakpoint
CREATE TABLE `audit_tiles` (
	`org_id` integer NOT NULL,
	`level` integer NOT NULL,
	`idx` integer NOT NULL,
	`hashes` blob NOT NULL,
	PRIMARY KEY(`org_id`, `level`, `idx`)
);
--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `seq` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `legacy_id` integer;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `submitter_type` text;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `submitter_id` text;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `submitter_name` text;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `sort_time` text DEFAULT '' NOT NULL;