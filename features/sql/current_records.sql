-- The current state of every record: its latest stored version, with the first repair and the
-- first revocation that refer to it resolved to dates. Nothing here depends on the as-of date or on
-- the policy (a later version replaces an earlier one whatever the date; a repair counts from its
-- decision date, which counted_records.sql compares with $as_of), so ingestion materialises this
-- once per batch (features.store.write_current) and profiles read it instead of redoing the work
-- per build. Input: record_versions (every stored version). History itself is never rewritten.
-- subject_key: the uscc here; the materialised store replaces it by a dense integer key.
WITH
changed AS (
    -- only records with several versions need the latest-version filter (few of them)
    SELECT record_id, MAX(version) AS max_version
    FROM record_versions WHERE version > 1 GROUP BY record_id
),
latest AS (
    SELECT r.record_id, r.uscc, r.kind, r.subkind, r.severity, r.decision_date, r.end_date,
           r.publicity_end, r.amount, r.department, r.document_no, r.ref_record_id, r.verified,
           r.verified_on, r.exemption
    FROM record_versions r
    LEFT JOIN changed c ON r.record_id = c.record_id
    WHERE c.max_version IS NULL OR r.version = c.max_version
),
ref_status AS (
    -- one row per referred record; the earliest repair (revocation) decides from when it applies
    SELECT ref_record_id AS record_id,
           MIN(decision_date) FILTER (WHERE kind = 'repair') AS repaired_on,
           MIN(decision_date) FILTER (WHERE kind = 'revocation') AS revoked_on
    FROM latest
    WHERE kind IN ('repair', 'revocation') AND ref_record_id IS NOT NULL
    GROUP BY ref_record_id
)
SELECT l.uscc AS subject_key, l.*, rs.repaired_on, rs.revoked_on,
       -- what the record says about conduct, by the contract's kinds (policy decides whether and how
       -- long it counts): fixed per record, so computed here once instead of in every build
       CASE
           WHEN l.kind = 'admin_penalty' THEN 'penalty'
           WHEN l.kind = 'admin_enforcement' THEN 'enforcement'
           WHEN l.kind = 'commitment_broken' THEN 'commitment_broken'
           WHEN l.kind = 'inspection' AND l.subkind IN ('corrected', 'case_opened') THEN 'inspection_problem'
           WHEN l.kind = 'complaint' THEN 'complaint'
           WHEN l.kind LIKE 'list_%' THEN 'list'
           WHEN l.kind = 'arrears' THEN 'arrears'
       END AS negative_class,
       -- integer cents: sums are then exact, so they do not depend on the summation order of the engine
       CAST(ROUND(l.amount * 100) AS BIGINT) AS amount_cents
FROM latest l
LEFT JOIN ref_status rs ON l.record_id = rs.record_id
