CREATE TABLE `audit_retention` (
	`org_id` integer PRIMARY KEY NOT NULL,
	`removed_through` integer NOT NULL,
	`received_max` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit_segments` (
	`org_id` integer NOT NULL,
	`seq_lo` integer NOT NULL,
	`seq_hi` integer NOT NULL,
	`key` text NOT NULL,
	`entries` integer NOT NULL,
	`bytes` integer NOT NULL,
	`sha256` text NOT NULL,
	`sort_min` text NOT NULL,
	`sort_max` text NOT NULL,
	`received_max` integer NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `seq_lo`)
);
--> statement-breakpoint
DROP INDEX `audit_event`;