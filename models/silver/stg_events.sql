{{
    config(
        materialized='incremental',
        unique_key='event_id'
    )
}}
-- Web clickstream, one row per event_id. Incremental: each run reads only what landed after
-- the newest _ingested_at already here (bronze's landing time), and merges on event_id.
-- properties is nested JSON kept as text by bronze; its few keys are read with ->>.
-- A client retry re-sends an event a few seconds later: the latest ts wins.
-- Rows without event_id are dropped; impossible timestamps (1900, 2099) are nulled, flagged.
with src as (
    select
        {{ clean_text('event_id') }} as event_id,
        {{ clean_text('session_id') }} as session_id,
        {{ to_bigint('customer_id') }} as customer_id,
        lower({{ clean_text('event_type') }}) as event_type,
        {{ clean_text('url') }} as url,
        {{ clean_text('ts') }} as ts_raw,
        {{ clean_text('user_agent') }} as user_agent,
        CAST(properties AS VARCHAR) as properties,
        lower({{ clean_text(drift_column('device')) }}) as device,
        _file,
        _ingested_at
    from {{ source('shop', 'events') }}
    where {{ clean_text('event_id') }} is not null
    {% if is_incremental() %}
      and _ingested_at > (select max(_ingested_at) from {{ this }})
    {% endif %}
),

parsed as (
    select
        src.*,
        {{ parse_ts('ts_raw') }} as ts_parsed,
        {{ to_bigint(json_text('properties', 'product_id')) }} as product_id,
        coalesce(
            {{ to_bigint(json_text('properties', 'quantity')) }},
            {{ to_bigint(json_text('properties', 'items')) }}
        ) as quantity,
        {{ parse_amount(json_text('properties', 'cart_value')) }} as cart_value_parsed,
        {{ json_text('properties', 'referrer') }} as referrer,
        {{ json_text('properties', 'query') }} as search_query
    from src
),

ranked as (
    select
        parsed.*,
        row_number() over (
            partition by event_id
            order by _ingested_at desc, _file desc, ts_parsed desc nulls last, session_id nulls last
        ) as version_rank,
        count(*) over (partition by event_id) as n_versions
    from parsed
)

select
    event_id,
    session_id,
    customer_id,
    event_type,
    url,
    case when {{ ts_in_range('ts_parsed') }} then ts_parsed end as event_ts,
    user_agent,
    device,
    product_id,
    quantity,
    case when cart_value_parsed >= 0 then cart_value_parsed end as cart_value,
    referrer,
    search_query,
    case
        when session_id is null then 'missing_session_id'
        when ts_raw is null then 'missing_ts'
        when ts_parsed is null then 'unparseable_ts'
        when not {{ ts_in_range('ts_parsed') }} then 'ts_out_of_range'
        when cart_value_parsed < 0 then 'negative_cart_value'
    end as dq_issue,
    n_versions,
    _file,
    _ingested_at
from ranked
where version_rank = 1
