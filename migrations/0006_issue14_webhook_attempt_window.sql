ALTER TABLE `webhooks` ADD `attempt_window` integer;--> statement-breakpoint
ALTER TABLE `webhooks` ADD `attempt_window_count` integer DEFAULT 0 NOT NULL;