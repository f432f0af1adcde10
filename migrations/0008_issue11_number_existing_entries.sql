-- Entries recorded before per-organisation numbers: seq 1, 2, 3 ... per organisation in id order,
-- the old global id kept as legacy_id (old API and page URLs redirect through it), and the sort time
-- (created_date, never later than receipt: received_at in ms as an ISO string with microseconds).
UPDATE `audit_entries` SET `seq` = `numbered`.`rn`, `legacy_id` = `audit_entries`.`id`
FROM (SELECT `id`, row_number() OVER (PARTITION BY `org_id` ORDER BY `id`) AS `rn` FROM `audit_entries`) AS `numbered`
WHERE `audit_entries`.`id` = `numbered`.`id`;
--> statement-breakpoint
UPDATE `audit_entries` SET `sort_time` = min(
  `created_date`,
  strftime('%Y-%m-%dT%H:%M:%S', `received_at` / 1000, 'unixepoch') || '.' || printf('%03d', `received_at` % 1000) || '000Z'
);
