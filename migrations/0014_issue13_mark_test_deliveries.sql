-- Test sends stored before deliveries had a kind: a delivery with neither an audit entry nor an event,
-- whose body is flaghook's test sample (src/manage/webhooks.ts, testPayload), is a test. Marked, they
-- are never resent by a recovery and count for nothing in a webhook's health.
UPDATE `deliveries` SET `kind` = 'test'
WHERE `audit_entry_id` IS NULL AND `event_id` IS NULL AND `event_type` IN ('AUDIT_LOG_CREATED', 'FLAG_UPDATED')
  AND `payload` LIKE '%Test webhook from flaghook%';
