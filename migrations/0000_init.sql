CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` integer NOT NULL,
	`name` text NOT NULL,
	`prefix` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_prefix` ON `api_keys` (`prefix`);--> statement-breakpoint
CREATE INDEX `api_keys_org` ON `api_keys` (`org_id`);--> statement-breakpoint
CREATE TABLE `attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`delivery_id` text NOT NULL,
	`number` integer NOT NULL,
	`attempted_at` integer NOT NULL,
	`status_code` integer,
	`duration_ms` integer NOT NULL,
	`error` text,
	`response_body` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `attempts_delivery` ON `attempts` (`delivery_id`,`number`);--> statement-breakpoint
CREATE TABLE `audit_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`org_id` integer NOT NULL,
	`event_id` text NOT NULL,
	`type` text NOT NULL,
	`created_date` text NOT NULL,
	`log` text NOT NULL,
	`author_id` integer,
	`author_email` text,
	`author` text,
	`api_key_name` text,
	`project_id` integer,
	`project_name` text,
	`environment_id` integer,
	`environment_name` text,
	`related_object_id` integer,
	`related_object_type` text NOT NULL,
	`related_object_uuid` text,
	`is_system_event` integer NOT NULL,
	`event` text NOT NULL,
	`received_at` integer NOT NULL,
	`recorded_at` integer NOT NULL,
	`fanned_out` integer DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `audit_event` ON `audit_entries` (`org_id`,`event_id`);--> statement-breakpoint
CREATE INDEX `audit_org_time` ON `audit_entries` (`org_id`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_project_time` ON `audit_entries` (`org_id`,`project_id`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_environment_time` ON `audit_entries` (`org_id`,`environment_id`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_type_time` ON `audit_entries` (`org_id`,`related_object_type`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_author_time` ON `audit_entries` (`org_id`,`author_id`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_author_email_time` ON `audit_entries` (`org_id`,`author_email`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_system_time` ON `audit_entries` (`org_id`,`is_system_event`,`created_date`,`id`);--> statement-breakpoint
CREATE INDEX `audit_not_fanned_out` ON `audit_entries` (`recorded_at`) WHERE fanned_out = 0;--> statement-breakpoint
CREATE TABLE `deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` integer NOT NULL,
	`webhook_id` text NOT NULL,
	`audit_entry_id` integer,
	`event_id` text,
	`event_type` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempt_count` integer DEFAULT 0 NOT NULL,
	`cycle_start` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`last_status_code` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `deliveries_webhook` ON `deliveries` (`webhook_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `deliveries_event` ON `deliveries` (`org_id`,`event_id`);--> statement-breakpoint
CREATE INDEX `deliveries_due` ON `deliveries` (`next_attempt_at`) WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX `deliveries_age` ON `deliveries` (`created_at`);--> statement-breakpoint
CREATE TABLE `environments` (
	`org_id` integer NOT NULL,
	`id` integer NOT NULL,
	`project_id` integer,
	`name` text,
	`api_key` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `environments_project` ON `environments` (`org_id`,`project_id`);--> statement-breakpoint
CREATE INDEX `environments_api_key` ON `environments` (`org_id`,`api_key`);--> statement-breakpoint
CREATE TABLE `organisations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `projects` (
	`org_id` integer NOT NULL,
	`id` integer NOT NULL,
	`name` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `id`)
);
--> statement-breakpoint
CREATE TABLE `webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` integer NOT NULL,
	`scope` text NOT NULL,
	`environment_id` integer,
	`url` text NOT NULL,
	`name` text NOT NULL,
	`enabled` integer NOT NULL,
	`event_types` text,
	`secret` text NOT NULL,
	`previous_secret` text,
	`previous_secret_expires_at` integer,
	`disabled_reason` text,
	`failing_since` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `webhooks_org` ON `webhooks` (`org_id`,`scope`,`environment_id`);