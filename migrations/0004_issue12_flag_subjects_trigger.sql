-- Custom SQL migration file, put your code below! --
-- flag_subjects lists every flag state flag_changes has seen, with when it was first and last
-- changed (a late arrival moves both) and what its first change was. Kept here so that recording
-- a change is one insert: the row is counted only when the insert happens (a replay adds nothing).
CREATE TRIGGER `flag_subjects_seen` AFTER INSERT ON `flag_changes` BEGIN
  INSERT INTO `flag_subjects` (`org_id`, `environment_id`, `feature_id`, `scope`, `subject`, `feature_name`, `first_changed_at`, `first_change`, `last_changed_at`)
  VALUES (NEW.`org_id`, NEW.`environment_id`, NEW.`feature_id`, NEW.`scope`, NEW.`subject`, NEW.`feature_name`, NEW.`changed_at`, NEW.`change`, NEW.`changed_at`)
  ON CONFLICT DO UPDATE SET
    `feature_name` = CASE WHEN excluded.`last_changed_at` >= `last_changed_at` THEN excluded.`feature_name` ELSE `feature_name` END,
    `first_change` = CASE WHEN excluded.`first_changed_at` < `first_changed_at` THEN excluded.`first_change` ELSE `first_change` END,
    `first_changed_at` = min(`first_changed_at`, excluded.`first_changed_at`),
    `last_changed_at` = max(`last_changed_at`, excluded.`last_changed_at`);
END;
