-- Every record of the catalogue decided on or before $as_of, with whether it counts against the
-- subject on that date and why not (revoked, repaired, exempted, out of its period). Used by the
-- profile definition (profiles.sql) and by features.evidence, so both read the same rules.
-- Input: current_records (current_records.sql, or its materialisation in the store); the
-- parameters: see profiles.sql.
WITH
cutoff AS (
    -- ADD_MONTHS(decision_date, m) > $as_of  <=>  decision_date > decided_after(m): ADD_MONTHS never
    -- decreases and clips to month end, so on a month-end as-of date the bound is a month end too.
    -- One row per month count the policy uses (a handful), so no record needs date arithmetic.
    SELECT months,
           CASE WHEN DATE '$as_of' = LAST_DAY(DATE '$as_of') THEN LAST_DAY(ADD_MONTHS(DATE '$as_of', -months))
                ELSE ADD_MONTHS(DATE '$as_of', -months) END AS decided_after
    FROM (SELECT window_months AS months FROM policy_kinds WHERE window_months IS NOT NULL
          UNION SELECT max_months AS months FROM policy_publicity) m
),
kinds AS (
    SELECT k.kind, k.polarity, k.kind_weight, k.window_months, c.decided_after AS window_decided_after,
           -- tested per record below: compared here once per kind, not once per record
           k.polarity = 'negative' AS is_negative, COALESCE(k.polarity = 'positive', FALSE) AS is_positive
    FROM policy_kinds k
    LEFT JOIN cutoff c ON k.window_months = c.months
),
publicity AS (
    SELECT p.valid_from, p.valid_to, p.severity, p.severity_weight, p.severity_rank, p.published,
           c.decided_after AS publicity_decided_after
    FROM policy_publicity p
    JOIN cutoff c ON p.max_months = c.months
),
rec AS (
    SELECT r.subject_key, r.record_id, r.uscc, r.kind, r.subkind, r.severity, r.decision_date, r.end_date,
           r.publicity_end, r.amount, r.amount_cents, r.negative_class, r.negative_class_code, r.list_code,
           r.severity_code, r.context_class, r.ref_record_id, r.verified,
           r.verified_on, r.exemption, r.department, r.document_no,
           -- repairs and revocations are resolved to dates in current_records: applied if dated
           -- on or before the as-of date
           COALESCE(r.repaired_on <= DATE '$as_of', FALSE) AS is_repaired,
           COALESCE(r.revoked_on <= DATE '$as_of', FALSE) AS is_revoked,
           k.polarity, k.is_negative, k.is_positive, k.kind_weight, k.window_months, k.window_decided_after
    FROM current_records r
    JOIN kinds k ON r.kind = k.kind
    WHERE r.decision_date <= DATE '$as_of'
),
ev AS (
    SELECT rec.*,
           ex.reason IS NOT NULL AS is_exempt,
           p.severity_rank,
           COALESCE(p.severity_weight, 1.0) AS severity_weight,
           -- still in its period on $as_of: a published penalty until its publicity ends (the
           -- dated rule's maximum, or the department's earlier publicity_end), an unpublished one
           -- only if the policy counts minor penalties (12 months), other kinds for their window
           -- or, without one, until the record itself ends (lists: exit; arrears: settlement)
           CASE
               WHEN rec.negative_class_code = 1 AND p.published
                   THEN rec.decision_date > p.publicity_decided_after
                        AND (rec.publicity_end IS NULL OR rec.publicity_end > DATE '$as_of')
               WHEN rec.negative_class_code = 1 AND $minor_penalty_counts
                   THEN ADD_MONTHS(rec.decision_date, 12) > DATE '$as_of'
               WHEN rec.negative_class_code = 1 THEN FALSE
               WHEN rec.window_months IS NOT NULL THEN rec.decision_date > rec.window_decided_after
               ELSE TRUE
           END AS in_period,
           rec.decision_date > DATE '$since_12m' AS in_12m,
           rec.decision_date > DATE '$since_36m' AS in_36m
    FROM rec
    LEFT JOIN policy_exemptions ex ON rec.exemption = ex.reason
    LEFT JOIN publicity p
        ON rec.negative_class_code IN (1, 5) AND rec.severity = p.severity
       AND rec.decision_date >= p.valid_from AND rec.decision_date < p.valid_to
),
record_status AS (
    SELECT ev.*,
           -- counts against the subject as of the date (negative polarity, not revoked, not
           -- repaired unless policy keeps repaired records, not exempted, still in its period)
           (is_negative AND negative_class_code > 0
            AND NOT is_revoked AND NOT is_exempt AND ($repaired_counts OR NOT is_repaired)
            AND in_period
            AND (negative_class_code NOT IN (6, 7) OR end_date IS NULL OR end_date > DATE '$as_of')
           ) AS counts
    FROM ev
)
SELECT record_status.*,
       -- decayed weights only where they are summed (counted records, a fraction of all): the POWER
       -- is the dearest expression per row. Integer micro-units, so sums are exact and do not depend
       -- on the summation order of the engine (nor on the last bit of its POWER)
       CASE WHEN counts
            THEN CAST(ROUND(kind_weight * severity_weight
                            * POWER(0.5, DATEDIFF('day', decision_date, DATE '$as_of') / $half_life_days)
                            * 1000000) AS BIGINT)
       END AS decayed_weight_micro
FROM record_status
