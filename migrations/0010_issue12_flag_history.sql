CREATE TABLE `flag_changes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`org_id` integer NOT NULL,
	`environment_id` integer NOT NULL,
	`feature_id` integer NOT NULL,
	`scope` text NOT NULL,
	`subject` text NOT NULL,
	`changed_at` text NOT NULL,
	`change` text NOT NULL,
	`priority` integer,
	`feature_name` text NOT NULL,
	`subject_id` integer,
	`subject_name` text,
	`audit_entry_id` integer,
	`event_id` text NOT NULL,
	`author` text,
	`reported_before` text,
	`state_json` text,
	`recorded_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `flag_changes_subject` ON `flag_changes` (`org_id`,`environment_id`,`feature_id`,`scope`,`subject`,`changed_at`);--> statement-breakpoint
CREATE INDEX `flag_changes_time` ON `flag_changes` (`org_id`,`environment_id`,`changed_at`);--> statement-breakpoint
CREATE TABLE `flag_subjects` (
	`org_id` integer NOT NULL,
	`environment_id` integer NOT NULL,
	`feature_id` integer NOT NULL,
	`scope` text NOT NULL,
	`subject` text NOT NULL,
	`feature_name` text NOT NULL,
	`first_changed_at` text NOT NULL,
	`first_change` text NOT NULL,
	PRIMARY KEY(`org_id`, `environment_id`, `feature_id`, `scope`, `subject`)
);
--> statement-breakpoint
CREATE TABLE `history_backfill` (
	`name` text PRIMARY KEY NOT NULL,
	`upto` integer NOT NULL,
	`done_through` integer NOT NULL
);
