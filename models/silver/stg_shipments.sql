-- One row per shipment (the id attribute, SHP-<order_id, 8 digits>). XML nested elements are
-- flattened by bronze (address_city, address_country); delivered_at is absent or empty until
-- delivery. A carrier update re-sends a shipment delivered (or with a corrected delivery
-- time): the latest delivered_at wins. A missing order_id is recovered from the shipment id.
with src as (
    select
        {{ clean_text('id') }} as shipment_id,
        {{ to_bigint('order_id') }} as order_id_raw,
        {{ clean_text('carrier') }} as carrier,
        {{ clean_text('tracking_no') }} as tracking_no,
        {{ clean_text('shipped_at') }} as shipped_at_raw,
        {{ clean_text('delivered_at') }} as delivered_at_raw,
        {{ clean_text('address_city') }} as city,
        upper({{ clean_text('address_country') }}) as country_code,
        _file,
        _ingested_at
    from {{ source('shop', 'shipments') }}
),

parsed as (
    select
        src.*,
        coalesce(
            order_id_raw,
            case when shipment_id ~ '^SHP-[0-9]+$' then TRY_CAST(substr(shipment_id, 5) AS BIGINT) end
        ) as order_id,
        {{ parse_ts('shipped_at_raw') }} as shipped_at_parsed,
        {{ parse_ts('delivered_at_raw') }} as delivered_at_parsed
    from src
    where shipment_id is not null
),

ranked as (
    select
        parsed.*,
        row_number() over (
            partition by shipment_id
            order by _ingested_at desc, _file desc, delivered_at_parsed desc nulls last, tracking_no nulls last
        ) as version_rank,
        count(*) over (partition by shipment_id) as n_versions
    from parsed
)

select
    shipment_id,
    order_id,
    carrier,
    tracking_no,
    case when {{ ts_in_range('shipped_at_parsed') }} then shipped_at_parsed end as shipped_at,
    case when {{ ts_in_range('delivered_at_parsed') }} then delivered_at_parsed end as delivered_at,
    city,
    country_code,
    case
        when order_id is null then 'missing_order_id'
        when order_id_raw is null then 'order_id_from_shipment_id'
        when tracking_no is null then 'missing_tracking_no'
        when shipped_at_parsed is null then 'unparseable_shipped_at'
        when not {{ ts_in_range('shipped_at_parsed') }} then 'shipped_at_out_of_range'
        when delivered_at_raw is not null and delivered_at_parsed is null then 'unparseable_delivered_at'
        when delivered_at_parsed < shipped_at_parsed then 'delivered_before_shipped'
    end as dq_issue,
    n_versions,
    _file,
    _ingested_at
from ranked
where version_rank = 1
