-- Point-in-time subject profiles: THE one definition (counted_records.sql is inlined as the scored CTE),
-- DuckDB dialect, transpiled to Spark SQL by SQLGlot.
-- Inputs (tables/views the engine registers):
--   current_records   the current state of every record (current_records.sql over record_versions,
--                     or its materialisation written at ingestion; features.store), possibly with
--                     rows under retired subject keys: only the join to current_subjects below
--                     decides which subjects exist, so those rows never reach a profile
--   current_subjects  the latest version of every subject (current_subjects.sql, or materialised)
--   policy_kinds      kind, polarity, kind_weight, window_months            (Policy.kind_table)
--   policy_publicity  valid_from, valid_to, severity, severity_weight,
--                     severity_rank, published, min_months, max_months      (Policy.publicity_table)
--   policy_exemptions reason
-- Parameters (substituted as literals, nothing else is templated):
--   $as_of $since_12m $since_36m $half_life_days $thin_file_min_records
--   $repaired_counts $minor_penalty_counts $self_declared_requires_verification
-- ADD_MONTHS is Spark's built-in; on DuckDB a macro with the same end-of-month clipping is defined.
WITH
scored AS (
$counted_records
),
-- One pass over the records that count or lie in the last 36 months (one hash table per subject,
-- no join of two aggregates). COUNT_IF(…) and SUM(CASE …) rather than COUNT(*) FILTER (…): the
-- same result on both engines, and DuckDB evaluates the conditions in one vectorised projection
-- where it handles every FILTER clause separately (≈ 2× dearer with ~50 aggregates, measured on
-- 20 M records; COUNT_IF another ≈ 20 % below COUNT(CASE …)). DuckDB's COUNT_IF is a HUGEINT:
-- counts are cast to BIGINT below, as Spark types them.
relevant AS (
    -- the classes the aggregates test, resolved once per record here instead of once per aggregate,
    -- from the integer codes of current_records (string comparisons per record cost more)
    SELECT subject_key, decision_date, severity_rank, decayed_weight_micro, amount_cents, in_12m,
        CASE WHEN NOT counts THEN 0 ELSE negative_class_code END AS counted_class,
        counts AND in_36m AS counts_36m,
        CASE WHEN counts THEN list_code ELSE 0 END AS counted_list,
        severity_code,
        -- 0: counted in no context feature, n_records_36m included. Actions on a record (repairs,
        -- revocations) have context_class 0 (current_records.sql). A signed commitment (10) is not
        -- counted either: signing is the subject's own pledge, checked only when due, and what the
        -- department finds (commitment_kept / commitment_broken) is the record that tells something,
        -- and counts. Counting the signature too would count each checked matter twice, and let a
        -- model that learned "more records, more risk" (most records are negative) turn signing,
        -- which the city asks of subjects (宁政办发〔2020〕49号), into a reason raising its risk.
        CASE WHEN NOT (in_36m AND NOT is_revoked) OR context_class IN (0, 10) THEN 0
             -- rewards and self-declarations only if the policy calls them positive
             WHEN context_class IN (3, 4) AND NOT is_positive THEN 9
             WHEN context_class = 4 AND $self_declared_requires_verification
                  AND NOT COALESCE(verified AND verified_on <= DATE '$as_of', FALSE) THEN 9
             WHEN context_class IN (6, 7, 8) AND (is_exempt OR NOT ($repaired_counts OR NOT is_repaired)) THEN 9
             ELSE context_class
        END AS context_kind,
        in_36m AND NOT is_revoked AND is_negative AND negative_class_code > 0 AND is_repaired AS context_repaired,
        in_36m AND NOT is_revoked AND is_negative AND negative_class_code > 0 AND is_exempt AS context_exempted
    FROM scored
    WHERE counts OR (in_36m AND NOT is_revoked)
),
agg AS (
    SELECT subject_key,
        -- against the subject: counted records only
        -- n_/w_ <class>_12m/_36m of every class of features.profiles.WINDOWED_CLASSES (written there)
        $windowed_class_aggregates
        COUNT_IF(counted_class = 1 AND counts_36m AND severity_code = 3) AS n_serious_penalty_36m,
        COUNT_IF(counted_class = 1 AND in_12m AND severity_code = 1) AS n_minor_penalty_12m,
        COUNT_IF(counted_class = 1 AND in_12m AND severity_code = 2) AS n_general_penalty_12m,
        COUNT_IF(counted_class = 6 AND counts_36m) AS n_list_entry_36m,
        SUM(CASE WHEN counted_class = 6 THEN decayed_weight_micro END) AS w_list_active,
        MAX(CASE WHEN counted_class = 1 THEN severity_rank END) AS max_severity_rank,
        MAX(CASE WHEN counted_class > 0 THEN decision_date END) AS last_negative_on,
        SUM(CASE WHEN counted_class = 1 AND counts_36m THEN amount_cents END) AS fines_36m,
        MAX(CASE WHEN counted_list = 1 THEN 1 ELSE 0 END) AS on_list_serious_dishonesty,
        MAX(CASE WHEN counted_list = 2 THEN 1 ELSE 0 END) AS on_list_key_attention,
        MAX(CASE WHEN counted_list = 3 THEN 1 ELSE 0 END) AS on_list_abnormal_operation,
        MAX(CASE WHEN counted_list = 4 THEN 1 ELSE 0 END) AS on_list_dishonest_debtor,
        COUNT_IF(counted_class = 7) AS n_arrears_unsettled,
        SUM(CASE WHEN counted_class = 7 THEN amount_cents END) AS amount_arrears_unsettled,
        -- context: every record of the last 36 months that is not revoked (context_kind > 0: not an
        -- action on a record, not a signed commitment; see relevant above)
        COUNT_IF(context_kind = 1) AS n_commitment_kept_36m,
        COUNT_IF(context_kind = 2) AS n_inspection_36m,
        COUNT_IF(context_repaired) AS n_repaired_36m,
        COUNT_IF(context_exempted) AS n_exempted_36m,
        COUNT_IF(context_kind = 3) AS n_reward_36m,
        COUNT_IF(context_kind = 4) AS n_self_declared_verified_36m,
        COUNT_IF(context_kind > 0) AS n_records_36m,
        -- arrears incurred by type, settled or not: settling ends the open debt (n_arrears_unsettled),
        -- not the fact that the obligation was missed; exempted (force majeure) ones never count, repaired ones only if the policy keeps repaired records
        COUNT_IF(context_kind = 6 AND in_12m) AS n_arrears_tax_12m,
        COUNT_IF(context_kind = 6) AS n_arrears_tax_36m,
        COUNT_IF(context_kind = 7 AND in_12m) AS n_arrears_social_insurance_12m,
        COUNT_IF(context_kind = 7) AS n_arrears_social_insurance_36m,
        COUNT_IF(context_kind = 8 AND in_12m) AS n_arrears_utility_12m,
        COUNT_IF(context_kind = 8) AS n_arrears_utility_36m,
        -- administrative checks (行政检查) are neutral records: context, never a finding
        COUNT_IF(context_kind = 5 AND in_12m) AS n_admin_check_12m,
        COUNT_IF(context_kind = 5) AS n_admin_check_36m
    FROM relevant
    GROUP BY subject_key
),
subj AS (
    SELECT s.subject_key, s.uscc, s.industry, s.district_code, s.registered_on, s.registered_capital, s.employees
    FROM current_subjects s
    WHERE s.registered_on <= DATE '$as_of'
      -- deregistered / revoked before the date: no longer a market subject to supervise
      AND NOT (s.status <> 'active' AND s.status_date IS NOT NULL AND s.status_date <= DATE '$as_of')
)
SELECT
    subj.uscc,
    DATE '$as_of' AS as_of,
    -- windowed_features_<class>: n_/w_ <class>_12m/_36m (features.profiles writes them, in this order)
    $windowed_features_penalty
    CAST(COALESCE(a.n_serious_penalty_36m, 0) AS BIGINT) AS n_serious_penalty_36m,
    CAST(COALESCE(a.n_minor_penalty_12m, 0) AS BIGINT) AS n_minor_penalty_12m,
    CAST(COALESCE(a.n_general_penalty_12m, 0) AS BIGINT) AS n_general_penalty_12m,
    $windowed_features_enforcement
    $windowed_features_commitment_broken
    $windowed_features_inspection_problem
    $windowed_features_complaint
    CAST(COALESCE(a.n_list_entry_36m, 0) AS BIGINT) AS n_list_entry_36m,
    CAST(COALESCE(a.w_list_active, 0) AS DOUBLE) / 1e6 AS w_list_active,
    COALESCE(a.max_severity_rank, 0) AS max_penalty_severity,
    DATEDIFF('day', a.last_negative_on, DATE '$as_of') AS days_since_last_negative,
    CAST(COALESCE(a.fines_36m, 0) AS DOUBLE) / 1e2 AS fines_36m,
    CASE WHEN COALESCE(a.n_commitment_broken_36m, 0) + COALESCE(a.n_commitment_kept_36m, 0) > 0
         THEN CAST(COALESCE(a.n_commitment_broken_36m, 0) AS DOUBLE)
              / (COALESCE(a.n_commitment_broken_36m, 0) + COALESCE(a.n_commitment_kept_36m, 0))
         END AS commitment_breach_rate,
    CASE WHEN COALESCE(a.n_inspection_36m, 0) > 0
         THEN CAST(COALESCE(a.n_inspection_problem_36m, 0) AS DOUBLE) / a.n_inspection_36m
         END AS inspection_failure_rate,
    CAST(COALESCE(a.n_inspection_36m, 0) AS BIGINT) AS n_inspection_36m,
    COALESCE(a.on_list_serious_dishonesty, 0) AS on_list_serious_dishonesty,
    COALESCE(a.on_list_key_attention, 0) AS on_list_key_attention,
    COALESCE(a.on_list_abnormal_operation, 0) AS on_list_abnormal_operation,
    COALESCE(a.on_list_dishonest_debtor, 0) AS on_list_dishonest_debtor,
    CAST(COALESCE(a.n_repaired_36m, 0) AS BIGINT) AS n_repaired_36m,
    CAST(COALESCE(a.n_exempted_36m, 0) AS BIGINT) AS n_exempted_36m,
    CAST(COALESCE(a.n_arrears_unsettled, 0) AS BIGINT) AS n_arrears_unsettled,
    CAST(COALESCE(a.amount_arrears_unsettled, 0) AS DOUBLE) / 1e2 AS amount_arrears_unsettled,
    CAST(COALESCE(a.n_reward_36m, 0) AS BIGINT) AS n_reward_36m,
    CAST(COALESCE(a.n_self_declared_verified_36m, 0) AS BIGINT) AS n_self_declared_verified_36m,
    CAST(COALESCE(a.n_commitment_kept_36m, 0) AS BIGINT) AS n_commitment_kept_36m,
    -- doubles only, never decimals: Spark reads 365.25 as DECIMAL and rounds the quotient; no ROUND
    -- on quotients either (engines round half-way cases differently; weights and money are summed
    -- as integers in counted_records.sql for the same reason)
    CAST(DATEDIFF('day', subj.registered_on, DATE '$as_of') AS DOUBLE) / CAST(365.25 AS DOUBLE) AS age_years,
    CAST(subj.registered_capital AS DOUBLE) AS registered_capital,
    CAST(subj.employees AS BIGINT) AS employees,
    subj.industry AS industry,
    subj.district_code AS district_code,
    CAST(COALESCE(a.n_records_36m, 0) AS BIGINT) AS n_records_36m,
    CAST(COALESCE(a.n_arrears_tax_12m, 0) AS BIGINT) AS n_arrears_tax_12m,
    CAST(COALESCE(a.n_arrears_tax_36m, 0) AS BIGINT) AS n_arrears_tax_36m,
    CAST(COALESCE(a.n_arrears_social_insurance_12m, 0) AS BIGINT) AS n_arrears_social_insurance_12m,
    CAST(COALESCE(a.n_arrears_social_insurance_36m, 0) AS BIGINT) AS n_arrears_social_insurance_36m,
    CAST(COALESCE(a.n_arrears_utility_12m, 0) AS BIGINT) AS n_arrears_utility_12m,
    CAST(COALESCE(a.n_arrears_utility_36m, 0) AS BIGINT) AS n_arrears_utility_36m,
    CAST(COALESCE(a.n_admin_check_12m, 0) AS BIGINT) AS n_admin_check_12m,
    CAST(COALESCE(a.n_admin_check_36m, 0) AS BIGINT) AS n_admin_check_36m,
    CASE WHEN COALESCE(a.n_records_36m, 0) < $thin_file_min_records
              OR DATEDIFF('day', subj.registered_on, DATE '$as_of') < 365 THEN 1 ELSE 0 END AS thin_file
FROM subj
LEFT JOIN agg a ON subj.subject_key = a.subject_key
-- by uscc: a delta of the materialised store gives new subjects keys after the others
ORDER BY subj.uscc
