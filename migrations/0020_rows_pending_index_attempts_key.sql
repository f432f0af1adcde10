PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_attempts` (
	`delivery_id` text NOT NULL,
	`number` integer NOT NULL,
	`attempted_at` integer NOT NULL,
	`status_code` integer,
	`duration_ms` integer NOT NULL,
	`error` text,
	`response_body` text,
	PRIMARY KEY(`delivery_id`, `number`)
);
--> statement-breakpoint
INSERT INTO `__new_attempts`("delivery_id", "number", "attempted_at", "status_code", "duration_ms", "error", "response_body") SELECT "delivery_id", "number", "attempted_at", "status_code", "duration_ms", "error", "response_body" FROM `attempts`;--> statement-breakpoint
DROP TABLE `attempts`;--> statement-breakpoint
ALTER TABLE `__new_attempts` RENAME TO `attempts`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
DROP INDEX `deliveries_pending`;--> statement-breakpoint
CREATE INDEX `deliveries_pending` ON `deliveries` (`webhook_id`,`created_at`) WHERE status = 'pending';