-- The attempt log WITHOUT ROWID (src/db/schema.ts, attempts): its primary key (delivery_id, number)
-- is the table, so recording an attempt writes one row, where the rowid table wrote the row and its
-- key's index. The previous migration gave the table that key (drizzle-kit cannot write WITHOUT
-- ROWID); this one rebuilds it so. Rows are small (a response excerpt of at most 2 KB).
CREATE TABLE `attempts_without_rowid` (
	`delivery_id` text NOT NULL,
	`number` integer NOT NULL,
	`attempted_at` integer NOT NULL,
	`status_code` integer,
	`duration_ms` integer NOT NULL,
	`error` text,
	`response_body` text,
	PRIMARY KEY(`delivery_id`, `number`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `attempts_without_rowid` (`delivery_id`, `number`, `attempted_at`, `status_code`, `duration_ms`, `error`, `response_body`)
SELECT `delivery_id`, `number`, `attempted_at`, `status_code`, `duration_ms`, `error`, `response_body` FROM `attempts`;
--> statement-breakpoint
DROP TABLE `attempts`;
--> statement-breakpoint
ALTER TABLE `attempts_without_rowid` RENAME TO `attempts`;
