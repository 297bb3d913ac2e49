-- One row per payment attempt (payment_id). The provider's webhook sends amounts as numbers
-- or currency strings, paid_at in ISO (with millis or an offset), SQL or epoch-seconds
-- spelling; fee appears from batch 2 (drift). A webhook retry re-sends a payment a few
-- minutes later: the latest paid_at wins. Rows without payment_id are dropped.
with src as (
    select
        {{ to_bigint('payment_id') }} as payment_id,
        {{ to_bigint('order_id') }} as order_id,
        lower({{ clean_text('method') }}) as method,
        {{ parse_amount('amount') }} as amount_parsed,
        {{ clean_text('paid_at') }} as paid_at_raw,
        lower({{ clean_text('status') }}) as status,
        {{ parse_amount(drift_column('fee')) }} as fee,
        _file,
        _ingested_at
    from {{ source('shop', 'payments') }}
),

parsed as (
    select
        src.*,
        {{ parse_ts('paid_at_raw') }} as paid_at_parsed
    from src
    where payment_id is not null
),

ranked as (
    select
        parsed.*,
        row_number() over (
            partition by payment_id
            order by _ingested_at desc, _file desc, paid_at_parsed desc nulls last, amount_parsed desc nulls last
        ) as version_rank,
        count(*) over (partition by payment_id) as n_versions
    from parsed
)

select
    payment_id,
    order_id,
    method,
    case when amount_parsed >= 0 then amount_parsed end as amount,
    case when {{ ts_in_range('paid_at_parsed') }} then paid_at_parsed end as paid_at,
    status,
    fee,
    case
        when order_id is null then 'missing_order_id'
        when amount_parsed is null then 'missing_amount'
        when amount_parsed < 0 then 'negative_amount'
        when paid_at_parsed is null then 'unparseable_paid_at'
        when not {{ ts_in_range('paid_at_parsed') }} then 'paid_at_out_of_range'
    end as dq_issue,
    n_versions,
    _file,
    _ingested_at
from ranked
where version_rank = 1
