-- One row per order line (order_id, line_no). Parquet gives typed columns; drift widens
-- quantity (INT32 -> INT64) and unit_price (FLOAT -> DOUBLE), which bronze reads at the
-- widest type. Value dirt: missing product_id, negative quantities (nulled, flagged) and
-- discounts entered as percentages (15 for 0.15: divided by 100, flagged). A line re-sent
-- after the customer changed the quantity is kept with the higher quantity.
with src as (
    select
        {{ to_bigint('order_id') }} as order_id,
        {{ safe_cast('line_no', 'BIGINT') }} as line_no,
        {{ to_bigint('product_id') }} as product_id,
        {{ safe_cast('quantity', 'BIGINT') }} as quantity_raw,
        {{ float_to_decimal('unit_price') }} as unit_price,
        {{ safe_cast('discount', 'DOUBLE') }} as discount_raw,
        _file,
        _ingested_at
    from {{ source('shop', 'order_items') }}
),

keyed as (
    select * from src
    where order_id is not null
      and line_no is not null
),

ranked as (
    select
        keyed.*,
        row_number() over (
            partition by order_id, line_no
            order by _ingested_at desc, _file desc, quantity_raw desc, product_id nulls last
        ) as version_rank,
        count(*) over (partition by order_id, line_no) as n_versions
    from keyed
),

cleaned as (
    select
        order_id,
        line_no,
        product_id,
        case when quantity_raw > 0 then quantity_raw end as quantity,
        unit_price,
        CAST(round(case when discount_raw > 1 then discount_raw / 100 else discount_raw end, 4) AS DECIMAL(6,4)) as discount,
        case
            when product_id is null then 'missing_product_id'
            when quantity_raw is null or quantity_raw <= 0 then 'non_positive_quantity'
            when discount_raw > 1 then 'discount_as_percent'
            when discount_raw < 0 then 'negative_discount'
            when unit_price is null or unit_price < 0 then 'bad_unit_price'
        end as dq_issue,
        n_versions,
        _file,
        _ingested_at
    from ranked
    where version_rank = 1
)

select
    order_id,
    line_no,
    product_id,
    quantity,
    unit_price,
    discount,
    CAST(round(CAST(quantity AS DOUBLE) * CAST(unit_price AS DOUBLE) * (1 - CAST(discount AS DOUBLE)), 2) AS DECIMAL(12,2)) as line_amount,
    dq_issue,
    n_versions,
    _file,
    _ingested_at
from cleaned
