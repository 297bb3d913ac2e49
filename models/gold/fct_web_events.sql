{{
    config(
        materialized='incremental',
        unique_key='event_id',
        event_time='event_ts'
    )
}}
-- Web events with a valid timestamp. Grain: event_id. Incremental like stg_events: a run
-- adds the events landed after the newest _ingested_at already here.
-- Joins: customer_id -> dim_customers (anonymous visitors have none), product_id ->
-- dim_products, event_date -> dim_date. event_time lets a microbatch model downstream
-- (agg_monthly_web_traffic) read just the events of the batch it builds.
select
    event_id,
    session_id,
    customer_id,
    customer_id is not null as is_logged_in,
    event_type,
    event_ts,
    CAST(event_ts AS DATE) as event_date,
    device,
    product_id,
    quantity,
    cart_value,
    referrer,
    search_query,
    url,
    _ingested_at
from {{ ref('stg_events') }}
where event_ts is not null
{% if is_incremental() %}
  and _ingested_at > (select max(_ingested_at) from {{ this }})
{% endif %}
