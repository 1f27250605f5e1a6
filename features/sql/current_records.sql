-- The current state of every record: its latest stored version, with the first repair and the
-- first revocation that refer to it resolved to dates. Nothing here depends on the as-of date or on
-- the policy (a later version replaces an earlier one whatever the date; a repair counts from its
-- decision date, which counted_records.sql compares with $as_of), so the store materialises it and
-- profiles read it instead of redoing the work per build. Input: record_versions, every stored
-- version, or (features.store, a batch's delta) the rows a batch touches: its own versions, the
-- current version of each record it changes or its repairs and revocations refer to, and of every
-- repair or revocation referring to one of those. That is all a touched record's row depends on.
-- History itself is never rewritten.
-- subject_key: the uscc here; the materialised store replaces it by an integer key.
WITH
changed AS (
    -- only records with several versions need the latest-version filter (few of them)
    SELECT record_id, MAX(version) AS max_version
    FROM record_versions WHERE version > 1 GROUP BY record_id
),
latest AS (
    SELECT r.record_id, r.uscc, r.kind, r.subkind, r.severity, r.decision_date, r.end_date,
           r.publicity_end, r.amount, r.department, r.document_no, r.ref_record_id, r.verified,
           r.verified_on, r.exemption, r.version
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
       -- the same classifications as small integers (0: none), for the per-record tests of every
       -- build: comparing integers instead of strings on ~20 M rows is measurably cheaper.
       -- negative_class_code: 1 penalty, 2 enforcement, 3 commitment_broken, 4 inspection_problem,
       -- 5 complaint, 6 list, 7 arrears (the order of negative_class above)
       CASE
           WHEN l.kind = 'admin_penalty' THEN 1
           WHEN l.kind = 'admin_enforcement' THEN 2
           WHEN l.kind = 'commitment_broken' THEN 3
           WHEN l.kind = 'inspection' AND l.subkind IN ('corrected', 'case_opened') THEN 4
           WHEN l.kind = 'complaint' THEN 5
           WHEN l.kind LIKE 'list_%' THEN 6
           WHEN l.kind = 'arrears' THEN 7
           ELSE 0
       END AS negative_class_code,
       -- list_code: 1 serious dishonesty, 2 key attention, 3 abnormal operation, 4 dishonest debtor
       CASE
           WHEN l.kind = 'list_serious_dishonesty' THEN 1
           WHEN l.kind = 'list_key_attention' THEN 2
           WHEN l.kind = 'list_abnormal_operation' THEN 3
           WHEN l.kind = 'list_dishonest_debtor' THEN 4
           ELSE 0
       END AS list_code,
       CASE WHEN l.severity = 'minor' THEN 1 WHEN l.severity = 'general' THEN 2 WHEN l.severity = 'serious' THEN 3
            ELSE 0 END AS severity_code,
       -- context_class: what the record is as context, before the policy's conditions: 1 commitment
       -- kept, 2 inspection, 3 reward, 4 self-declared, 5 administrative check, arrears by type
       -- (6 tax, 7 social insurance, 8 water, power, gas), 10 a signed commitment (commitment_made:
       -- a pledge, not counted among the subject's records, see profiles.sql), 9 anything else.
       -- 0: not a record of the subject at all but an action on one of its records (a repair, a
       -- revocation, from the store or the service's own SRV-REPAIR-/SRV-REVOKE- rows): it acts
       -- only through that record's repaired_on / revoked_on above, so no feature counts it, no
       -- reason cites it and it is never in force (features.evidence), whatever polarity a policy
       -- gives its kind. Upholding an objection must make the counts go down, never up (review17b).
       CASE
           WHEN l.kind IN ('repair', 'revocation') THEN 0
           WHEN l.kind = 'commitment_made' THEN 10
           WHEN l.kind = 'commitment_kept' THEN 1
           WHEN l.kind = 'inspection' THEN 2
           WHEN l.kind = 'admin_reward' THEN 3
           WHEN l.kind = 'self_declared' THEN 4
           WHEN l.kind = 'admin_check' THEN 5
           WHEN l.kind = 'arrears' AND l.subkind = 'tax' THEN 6
           WHEN l.kind = 'arrears' AND l.subkind = 'social_insurance' THEN 7
           WHEN l.kind = 'arrears' AND l.subkind IN ('water', 'power', 'gas') THEN 8
           ELSE 9
       END AS context_class,
       -- integer cents: sums are then exact, so they do not depend on the summation order of the engine
       CAST(ROUND(l.amount * 100) AS BIGINT) AS amount_cents
FROM latest l
LEFT JOIN ref_status rs ON l.record_id = rs.record_id
