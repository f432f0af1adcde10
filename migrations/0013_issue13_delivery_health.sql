CREATE TABLE `webhook_health` (
	`webhook_id` text NOT NULL,
	`hour` integer NOT NULL,
	`delivered` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`attempts_failed` integer DEFAULT 0 NOT NULL,
	`attempts_refused` integer DEFAULT 0 NOT NULL,
	`le_10` integer DEFAULT 0 NOT NULL,
	`le_20` integer DEFAULT 0 NOT NULL,
	`le_35` integer DEFAULT 0 NOT NULL,
	`le_50` integer DEFAULT 0 NOT NULL,
	`le_75` integer DEFAULT 0 NOT NULL,
	`le_100` integer DEFAULT 0 NOT NULL,
	`le_150` integer DEFAULT 0 NOT NULL,
	`le_200` integer DEFAULT 0 NOT NULL,
	`le_300` integer DEFAULT 0 NOT NULL,
	`le_500` integer DEFAULT 0 NOT NULL,
	`le_750` integer DEFAULT 0 NOT NULL,
	`le_1000` integer DEFAULT 0 NOT NULL,
	`le_1500` integer DEFAULT 0 NOT NULL,
	`le_2500` integer DEFAULT 0 NOT NULL,
	`le_5000` integer DEFAULT 0 NOT NULL,
	`le_10000` integer DEFAULT 0 NOT NULL,
	`gt_10000` integer DEFAULT 0 NOT NULL,
	`last_success_at` integer,
	`last_failure_at` integer,
	`last_failure` text,
	PRIMARY KEY(`webhook_id`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `webhook_health_hour` ON `webhook_health` (`hour`);--> statement-breakpoint
DROP INDEX `deliveries_due`;--> statement-breakpoint
ALTER TABLE `deliveries` ADD `kind` text DEFAULT 'event' NOT NULL;--> statement-breakpoint
CREATE INDEX `deliveries_pending` ON `deliveries` (`webhook_id`,`created_at`,`next_attempt_at`) WHERE status = 'pending';