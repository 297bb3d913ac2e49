-- Every order row of bronze, typed and checked: the base of stg_orders (the kept version of
-- each order) and stg_orders_rejected (orders no gold fact can use). Keeping all versions
-- here keeps the duplicate counts queryable (version_rank > 1 rows were collapsed).
--
-- Drift: batch 1 calls the total total_amount, later batches order_total; bronze reads the
-- union of both columns, so the amount is whichever one the row's file had.
with src as (
    select
        {{ to_bigint('order_id') }} as order_id,
        {{ to_bigint('customer_id') }} as customer_id,
        {{ clean_text('order_ts') }} as order_ts_raw,
        CAST(status AS VARCHAR) as status_raw,
        coalesce({{ clean_text('total_amount') }}, {{ clean_text(drift_column('order_total')) }}) as amount_raw,
        upper(coalesce({{ clean_text('currency') }}, '{{ var("default_currency") }}')) as currency,
        lower({{ clean_text('channel') }}) as channel,
        _file,
        _ingested_at
    from {{ source('shop', 'orders') }}
),

parsed as (
    select
        src.*,
        {{ parse_ts('order_ts_raw') }} as order_ts_parsed,
        {{ parse_amount('amount_raw') }} as amount_parsed,
        {{ normalize_status('status_raw') }} as status
    from src
),

checked as (
    select
        parsed.*,
        case
            when order_id is null then 'missing_order_id'
            when order_ts_raw is null then 'missing_order_ts'
            when order_ts_parsed is null then 'unparseable_order_ts'
            when not {{ ts_in_range('order_ts_parsed') }} then 'order_ts_out_of_range'
            when amount_parsed is null then 'missing_amount'
            when amount_parsed < 0 then 'negative_amount'
            when status not in {{ order_statuses() }} then 'unknown_status'
            when customer_id is null then 'missing_customer_id'
        end as dq_issue
    from parsed
),

flagged as (
    select
        checked.*,
        case
            when dq_issue in (
                'missing_order_id', 'missing_order_ts', 'unparseable_order_ts',
                'order_ts_out_of_range', 'missing_amount', 'negative_amount', 'unknown_status'
            ) then true
            else false
        end as is_rejected
    from checked
)

-- A re-sent order (same order_id) is the same order later in its life (pending -> paid ->
-- shipped -> delivered) or spelled by another system: the latest landed file wins, then the
-- most advanced status. Exact duplicates tie on everything and collapse to one.
select
    flagged.*,
    row_number() over (
        partition by order_id
        order by
            _ingested_at desc, _file desc, {{ status_rank('status') }} desc,
            order_ts_parsed desc nulls last, amount_parsed desc nulls last, status_raw
    ) as version_rank,
    count(*) over (partition by order_id) as n_versions
from flagged
