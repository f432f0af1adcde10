CREATE TABLE `organisation_access` (
	`org_id` integer NOT NULL,
	`kind` text NOT NULL,
	`value` text NOT NULL,
	PRIMARY KEY(`kind`, `value`, `org_id`)
);
--> statement-breakpoint
CREATE INDEX `organisation_access_org` ON `organisation_access` (`org_id`);--> statement-breakpoint
CREATE TABLE `ui_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` integer NOT NULL,
	`key_id` text,
	`email` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `ui_sessions_expiry` ON `ui_sessions` (`expires_at`);