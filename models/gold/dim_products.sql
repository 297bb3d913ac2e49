-- Products with their catalog attributes (from the nested JSON attributes).
select
    product_id as product_key,
    product_id,
    sku,
    product_name,
    category,
    price as list_price,
    currency,
    weight_kg,
    color,
    size,
    material,
    created_at,
    CAST(created_at AS DATE) as created_date,
    dq_issue
from {{ ref('stg_products') }}
