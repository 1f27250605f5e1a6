-- The current state of every subject: its latest stored version (as-of independent, see
-- current_records.sql). subject_key: the uscc here; the materialised store uses an integer key
-- (features.store). Input: subject_versions, every stored version or the ones a batch touches.
SELECT s.uscc AS subject_key, s.uscc, s.industry, s.district_code, s.registered_on, s.registered_capital,
       s.employees, s.status, s.status_date,
       s.version
FROM (
    SELECT sv.*, ROW_NUMBER() OVER (PARTITION BY sv.uscc ORDER BY sv.version DESC) AS version_rank
    FROM subject_versions sv
) s
WHERE s.version_rank = 1
