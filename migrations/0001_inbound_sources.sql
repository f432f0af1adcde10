CREATE TABLE `inbound_sources` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` integer NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`token_prefix` text NOT NULL,
	`secret` text NOT NULL,
	`created_at` integer NOT NULL,
	`last_received_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inbound_sources_token` ON `inbound_sources` (`token_hash`);--> statement-breakpoint
CREATE INDEX `inbound_sources_org` ON `inbound_sources` (`org_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `relayed_events` (
	`org_id` integer NOT NULL,
	`event_id` text NOT NULL,
	`source_id` text NOT NULL,
	`event_type` text NOT NULL,
	`environment_id` integer NOT NULL,
	`received_at` integer NOT NULL,
	`recorded_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `event_id`)
);
--> statement-breakpoint
CREATE INDEX `relayed_events_age` ON `relayed_events` (`recorded_at`);