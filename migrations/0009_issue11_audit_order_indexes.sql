DROP INDEX `audit_org_time`;--> statement-breakpoint
DROP INDEX `audit_project_time`;--> statement-breakpoint
DROP INDEX `audit_environment_time`;--> statement-breakpoint
DROP INDEX `audit_type_time`;--> statement-breakpoint
DROP INDEX `audit_author_time`;--> statement-breakpoint
DROP INDEX `audit_author_email_time`;--> statement-breakpoint
DROP INDEX `audit_system_time`;--> statement-breakpoint
CREATE UNIQUE INDEX `audit_seq` ON `audit_entries` (`org_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_legacy` ON `audit_entries` (`org_id`,`legacy_id`) WHERE legacy_id is not null;--> statement-breakpoint
CREATE INDEX `audit_submitter_type_time` ON `audit_entries` (`org_id`,`submitter_type`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_submitter_time` ON `audit_entries` (`org_id`,`submitter_id`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_org_time` ON `audit_entries` (`org_id`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_project_time` ON `audit_entries` (`org_id`,`project_id`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_environment_time` ON `audit_entries` (`org_id`,`environment_id`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_type_time` ON `audit_entries` (`org_id`,`related_object_type`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_author_time` ON `audit_entries` (`org_id`,`author_id`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_author_email_time` ON `audit_entries` (`org_id`,`author_email`,`sort_time`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_system_time` ON `audit_entries` (`org_id`,`is_system_event`,`sort_time`,`seq`);