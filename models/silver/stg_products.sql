-- One row per product. The catalog feed is a JSON array per drop; a product is re-sent
-- within its drop after a price change or with a trailing space in its name. The feed has no
-- update time, so among versions of one drop the most complete one wins, then the highest
-- price (the re-sent price change). Negative prices are nulled and flagged.
with src as (
    select
        {{ to_bigint('product_id') }} as product_id,
        {{ clean_text('sku') }} as sku,
        {{ clean_text('name') }} as product_name,
        lower({{ clean_text('category') }}) as category,
        {{ parse_amount('price') }} as price_parsed,
        upper(coalesce({{ clean_text('currency') }}, '{{ var("default_currency") }}')) as currency,
        {{ safe_cast(clean_text('weight_kg'), 'DOUBLE') }} as weight_kg,
        {{ clean_text('created_at') }} as created_at_raw,
        CAST(attributes AS VARCHAR) as attributes,
        _file,
        _ingested_at
    from {{ source('shop', 'products') }}
),

parsed as (
    select
        src.*,
        {{ parse_ts('created_at_raw') }} as created_at_parsed,
        {{ json_text('attributes', 'color') }} as color,
        {{ json_text('attributes', 'size') }} as size,
        {{ json_text('attributes', 'material') }} as material
    from src
    where product_id is not null
),

ranked as (
    select
        parsed.*,
        row_number() over (
            partition by product_id
            order by _ingested_at desc, _file desc, case when sku is null then 1 else 0 end, case when product_name is null then 1 else 0 end, case when price_parsed is null then 1 else 0 end, price_parsed desc, product_name
        ) as version_rank,
        count(*) over (partition by product_id) as n_versions
    from parsed
)

select
    product_id,
    sku,
    product_name,
    category,
    case when price_parsed >= 0 then price_parsed end as price,
    currency,
    weight_kg,
    case when {{ ts_in_range('created_at_parsed') }} then created_at_parsed end as created_at,
    color,
    size,
    material,
    case
        when sku is null then 'missing_sku'
        when product_name is null then 'missing_name'
        when price_parsed is null then 'missing_price'
        when price_parsed < 0 then 'negative_price'
        when created_at_parsed is null then 'unparseable_created_at'
        when not {{ ts_in_range('created_at_parsed') }} then 'created_at_out_of_range'
    end as dq_issue,
    n_versions,
    _file,
    _ingested_at
from ranked
where version_rank = 1
