-- Webhooks created before issue 10 with no event_types filter received their scope's default of that
-- time. The defaults now follow Flagsmith (organisation: AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED;
-- environment: FLAG_UPDATED, FLAG_DELETED, NEW_VERSION_PUBLISHED) and are stored on each new webhook,
-- so the existing ones keep exactly what they received: their old default, written out.
UPDATE `webhooks` SET `event_types` = '["AUDIT_LOG_CREATED"]' WHERE `event_types` IS NULL AND `scope` = 'organisation';
--> statement-breakpoint
UPDATE `webhooks` SET `event_types` = '["FLAG_UPDATED","FLAG_DELETED"]' WHERE `event_types` IS NULL AND `scope` = 'environment';
