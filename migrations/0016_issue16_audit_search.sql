-- Text search through an FTS5 trigram index (src/db/audit-search.ts). One row per audit entry, its
-- rowid (org_id << 32) | seq, so an organisation's entries are one rowid range in seq order. `log`
-- is the entry's search_text (the log folded to lower case by the recorder), indexed as it is
-- (case_sensitive 1: nothing folded twice), so a phrase of trigrams matches exactly the substrings
-- that instr() does. `backdated` is 'yes' for an entry that arrived out of time order (sort_wm set).
-- Contentless: the text stays in audit_entries only; contentless_delete lets archiving and
-- retention delete rows.
-- Backfill the watermark first: the latest sort time up to each entry in seq order, kept only
-- where it is later than the entry's own.
UPDATE `audit_entries` SET `sort_wm` = `w`.`wm`
FROM (SELECT `id`, max(`sort_time`) OVER (PARTITION BY `org_id` ORDER BY `seq` ROWS UNBOUNDED PRECEDING) AS `wm` FROM `audit_entries`) AS `w`
WHERE `audit_entries`.`id` = `w`.`id` AND `w`.`wm` > `audit_entries`.`sort_time`;
--> statement-breakpoint
CREATE VIRTUAL TABLE `audit_search` USING fts5(`log`, `backdated`, content='', contentless_delete=1, tokenize='trigram case_sensitive 1');
--> statement-breakpoint
INSERT INTO `audit_search` (`rowid`, `log`, `backdated`)
SELECT (`org_id` << 32) | `seq`, `search_text`, CASE WHEN `sort_wm` IS NULL THEN '' ELSE 'yes' END FROM `audit_entries`;
--> statement-breakpoint
CREATE TRIGGER `audit_search_insert` AFTER INSERT ON `audit_entries` BEGIN
  INSERT INTO `audit_search` (`rowid`, `log`, `backdated`)
  VALUES ((new.`org_id` << 32) | new.`seq`, new.`search_text`, CASE WHEN new.`sort_wm` IS NULL THEN '' ELSE 'yes' END);
END;
--> statement-breakpoint
CREATE TRIGGER `audit_search_delete` AFTER DELETE ON `audit_entries` BEGIN
  DELETE FROM `audit_search` WHERE `rowid` = (old.`org_id` << 32) | old.`seq`;
END;
--> statement-breakpoint
-- Entries are append-only; a hand correction of an entry's number or text keeps the index true.
CREATE TRIGGER `audit_search_update` AFTER UPDATE OF `org_id`, `seq`, `search_text`, `sort_wm` ON `audit_entries` BEGIN
  DELETE FROM `audit_search` WHERE `rowid` = (old.`org_id` << 32) | old.`seq`;
  INSERT INTO `audit_search` (`rowid`, `log`, `backdated`)
  VALUES ((new.`org_id` << 32) | new.`seq`, new.`search_text`, CASE WHEN new.`sort_wm` IS NULL THEN '' ELSE 'yes' END);
END;
