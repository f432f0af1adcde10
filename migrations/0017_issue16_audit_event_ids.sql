-- Event ids per organisation, apart from the entries: the recorder's idempotency (an event id is
-- recorded once) and GET /api/v1/events/{id} keep working for entries moved to the R2 archive,
-- whose rows leave audit_entries. WITHOUT ROWID: the primary key is the table, one row written per
-- entry, as the unique index audit_event it replaces was. Kept by a trigger on audit_entries
-- (src/db/derived.ts); a duplicate event id fails the insert as that index did.
CREATE TABLE `audit_event_ids` (
  `org_id` integer NOT NULL,
  `event_id` text NOT NULL,
  `seq` integer NOT NULL,
  PRIMARY KEY (`org_id`, `event_id`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `audit_event_ids` (`org_id`, `event_id`, `seq`) SELECT `org_id`, `event_id`, `seq` FROM `audit_entries`;
--> statement-breakpoint
CREATE TRIGGER `audit_event_ids_insert` AFTER INSERT ON `audit_entries` BEGIN
  INSERT INTO `audit_event_ids` (`org_id`, `event_id`, `seq`) VALUES (new.`org_id`, new.`event_id`, new.`seq`);
END;
--> statement-breakpoint
CREATE TRIGGER `audit_event_ids_update` AFTER UPDATE OF `org_id`, `event_id`, `seq` ON `audit_entries` BEGIN
  UPDATE `audit_event_ids` SET `org_id` = new.`org_id`, `event_id` = new.`event_id`, `seq` = new.`seq`
  WHERE `org_id` = old.`org_id` AND `event_id` = old.`event_id`;
END;
