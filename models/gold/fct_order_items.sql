-- One row per order line of a clean order. Grain: (order_id, line_no).
-- Joins: order_id -> fct_orders, product_id -> dim_products, order_date -> dim_date.
-- Lines of rejected orders (stg_orders_rejected) are left out with their orders.
select
    i.order_id,
    i.line_no,
    CAST(i.order_id AS VARCHAR) || '-' || CAST(i.line_no AS VARCHAR) as order_line_key,
    o.customer_id,
    o.order_date,
    i.product_id,
    i.quantity,
    i.unit_price,
    i.discount,
    i.line_amount,
    o.status as order_status,
    i.dq_issue
from {{ ref('stg_order_items') }} as i
inner join {{ ref('stg_orders') }} as o on o.order_id = i.order_id
