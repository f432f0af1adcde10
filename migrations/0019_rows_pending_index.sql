DROP INDEX `deliveries_pending`;--> statement-breakpoint
CREATE INDEX `deliveries_pending` ON `deliveries` (`webhook_id`,`created_at`) WHERE status = 'pending';