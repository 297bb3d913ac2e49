{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='month_start',
        batch_size='month',
        begin='2026-01-01',
        lookback=1
    )
}}
-- Web traffic per calendar month, built by dbt's microbatch strategy: the first build runs one
-- batch per month from `begin`; later builds run the current month and the one before it
-- (lookback), each batch reading only that month's events (fct_web_events sets event_time)
-- and replacing only that month's row. Events landed late for an older month are taken in by
-- a backfill: strata build -s agg_monthly_web_traffic --event-time-start 2026-01-01
select
    CAST(date_trunc('month', event_ts) AS DATE) as month_start,
    count(*) as web_events,
    count(distinct session_id) as web_sessions,
    count(distinct customer_id) as logged_in_customers,
    CAST(sum(case when event_type = 'purchase' then 1 else 0 end) AS BIGINT) as purchases
from {{ ref('fct_web_events') }}
group by CAST(date_trunc('month', event_ts) AS DATE)
