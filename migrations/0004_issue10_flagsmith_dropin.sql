CREATE TABLE `features` (
	`org_id` integer NOT NULL,
	`id` integer NOT NULL,
	`project_id` integer,
	`name` text,
	`created_date` text NOT NULL,
	`created_date_given` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `id`)
);
--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `environment_api_key` text;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `scope_extras` text;--> statement-breakpoint
ALTER TABLE `inbound_sources` ADD `signed` integer DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE `inbound_sources` ADD `last_test_received_at` integer;--> statement-breakpoint
ALTER TABLE `webhooks` ADD `changed_by` text DEFAULT 'name' NOT NULL;--> statement-breakpoint
ALTER TABLE `webhooks` ADD `staged_rotation` integer DEFAULT false NOT NULL;