-- Every record of the catalogue decided on or before $as_of, with whether it counts against the
-- subject on that date and why not (revoked, repaired, exempted, out of its period). Used by the
-- profile definition (profiles.sql) and by features.evidence, so both read the same rules.
-- Input: current_records (current_records.sql, or its materialisation in the store); the
-- parameters: see profiles.sql.
WITH
rec AS (
    SELECT r.subject_key, r.record_id, r.uscc, r.kind, r.subkind, r.severity, r.decision_date, r.end_date,
           r.publicity_end, r.amount, r.ref_record_id, r.verified, r.verified_on, r.exemption,
           r.department, r.document_no,
           -- repairs and revocations are resolved to dates in current_records: applied if dated
           -- on or before the as-of date
           COALESCE(r.repaired_on <= DATE '$as_of', FALSE) AS is_repaired,
           COALESCE(r.revoked_on <= DATE '$as_of', FALSE) AS is_revoked,
           k.polarity, k.kind_weight, k.window_months
    FROM current_records r
    JOIN policy_kinds k ON r.kind = k.kind
    WHERE r.decision_date <= DATE '$as_of'
),
ev AS (
    SELECT rec.*,
           ex.reason IS NOT NULL AS is_exempt,
           p.severity_rank,
           COALESCE(p.severity_weight, 1.0) AS severity_weight,
           -- the day a record stops counting: publicity end (penalties, dated rules), the kind's
           -- window, or NULL = counts until it ends (lists: exit; arrears: settlement)
           CASE
               WHEN rec.kind = 'admin_penalty' AND p.published
                   THEN LEAST(COALESCE(rec.publicity_end, ADD_MONTHS(rec.decision_date, p.max_months)),
                              ADD_MONTHS(rec.decision_date, p.max_months))
               WHEN rec.kind = 'admin_penalty' AND $minor_penalty_counts
                   THEN ADD_MONTHS(rec.decision_date, 12)
               WHEN rec.kind = 'admin_penalty' THEN rec.decision_date
               WHEN rec.window_months IS NOT NULL THEN ADD_MONTHS(rec.decision_date, rec.window_months)
           END AS counts_until,
           CASE
               WHEN rec.kind = 'admin_penalty' THEN 'penalty'
               WHEN rec.kind = 'admin_enforcement' THEN 'enforcement'
               WHEN rec.kind = 'commitment_broken' THEN 'commitment_broken'
               WHEN rec.kind = 'inspection' AND rec.subkind IN ('corrected', 'case_opened') THEN 'inspection_problem'
               WHEN rec.kind = 'complaint' THEN 'complaint'
               WHEN rec.kind LIKE 'list_%' THEN 'list'
               WHEN rec.kind = 'arrears' THEN 'arrears'
           END AS negative_class,
           rec.decision_date > DATE '$since_12m' AS in_12m,
           rec.decision_date > DATE '$since_36m' AS in_36m,
           DATEDIFF('day', rec.decision_date, DATE '$as_of') AS age_days
    FROM rec
    LEFT JOIN policy_exemptions ex ON rec.exemption = ex.reason
    LEFT JOIN policy_publicity p
        ON rec.kind IN ('admin_penalty', 'complaint') AND rec.severity = p.severity
       AND rec.decision_date >= p.valid_from AND rec.decision_date < p.valid_to
),
record_status AS (
    SELECT ev.*,
           -- counts against the subject as of the date (negative polarity, not revoked, not
           -- repaired unless policy keeps repaired records, not exempted, still in its period)
           (polarity = 'negative' AND negative_class IS NOT NULL
            AND NOT is_revoked AND NOT is_exempt AND ($repaired_counts OR NOT is_repaired)
            AND (counts_until IS NULL OR counts_until > DATE '$as_of')
            AND (negative_class <> 'list' OR end_date IS NULL OR end_date > DATE '$as_of')
            AND (negative_class <> 'arrears' OR end_date IS NULL OR end_date > DATE '$as_of')
           ) AS counts
    FROM ev
),
weighted AS (
    SELECT record_status.*,
           -- decayed weights only where they are summed (counted records, a fraction of all): the
           -- POWER is the dearest expression per row
           CASE WHEN counts THEN kind_weight * severity_weight * POWER(0.5, age_days / $half_life_days)
           END AS decayed_weight,
           -- integer micro-units and cents: sums are then exact, so they do not depend on the
           -- summation order of the engine (nor on the last bit of its POWER)
           CASE WHEN counts
                THEN CAST(ROUND(kind_weight * severity_weight * POWER(0.5, age_days / $half_life_days) * 1000000) AS BIGINT)
           END AS decayed_weight_micro,
           CAST(ROUND(amount * 100) AS BIGINT) AS amount_cents
    FROM record_status
)
SELECT * FROM weighted
