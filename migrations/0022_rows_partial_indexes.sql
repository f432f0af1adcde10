DROP INDEX `deliveries_age`;--> statement-breakpoint
DROP INDEX `audit_project_time`;--> statement-breakpoint
DROP INDEX `audit_environment_time`;--> statement-breakpoint
DROP INDEX `audit_author_time`;--> statement-breakpoint
DROP INDEX `audit_author_email_time`;--> statement-breakpoint
DROP INDEX `audit_system_time`;--> statement-breakpoint
CREATE INDEX `audit_project_time` ON `audit_entries` (`org_id`,`project_id`,`sort_time`,`seq`) WHERE project_id is not null;--> statement-breakpoint
CREATE INDEX `audit_environment_time` ON `audit_entries` (`org_id`,`environment_id`,`sort_time`,`seq`) WHERE environment_id is not null;--> statement-breakpoint
CREATE INDEX `audit_author_time` ON `audit_entries` (`org_id`,`author_id`,`sort_time`,`seq`) WHERE author_id is not null;--> statement-breakpoint
CREATE INDEX `audit_author_email_time` ON `audit_entries` (`org_id`,`author_email`,`sort_time`,`seq`) WHERE author_email is not null;--> statement-breakpoint
CREATE INDEX `audit_system_time` ON `audit_entries` (`org_id`,`sort_time`,`seq`) WHERE is_system_event = 1;