-- Custom SQL migration file, put your code below! --
-- flag_subjects lists every flag state flag_changes has seen, with its first change (when and
-- what). Kept here so that recording a change stays one insert: a state seen before costs a lookup,
-- and a write only when a late arrival turns out to be its earliest change.
CREATE TRIGGER `flag_subjects_seen` AFTER INSERT ON `flag_changes` BEGIN
  INSERT INTO `flag_subjects` (`org_id`, `environment_id`, `feature_id`, `scope`, `subject`, `feature_name`, `first_changed_at`, `first_change`)
  VALUES (NEW.`org_id`, NEW.`environment_id`, NEW.`feature_id`, NEW.`scope`, NEW.`subject`, NEW.`feature_name`, NEW.`changed_at`, NEW.`change`)
  ON CONFLICT DO UPDATE SET
    `feature_name` = excluded.`feature_name`,
    `first_changed_at` = excluded.`first_changed_at`,
    `first_change` = excluded.`first_change`
  WHERE excluded.`first_changed_at` < `first_changed_at`;
END;
