-- One row per clean order (stg_orders), with its lines, payments and shipment rolled up.
-- Grain: order_id. Joins: customer_id -> dim_customers, order_date -> dim_date.
with orders as (
    select * from {{ ref('stg_orders') }}
),

items as (
    select
        order_id,
        count(*) as line_count,
        CAST(sum(quantity) AS BIGINT) as units,
        sum(line_amount) as items_amount
    from {{ ref('stg_order_items') }}
    group by order_id
),

payments as (
    select
        order_id,
        count(*) as payment_attempts,
        CAST(sum(case when status = 'failed' then 1 else 0 end) AS BIGINT) as failed_payments,
        sum(case when status = 'captured' then amount else 0 end) as captured_amount,
        sum(case when status = 'refunded' then amount else 0 end) as refunded_amount,
        max(paid_at) as last_paid_at
    from {{ ref('stg_payments') }}
    where order_id is not null
    group by order_id
),

shipments as (
    select
        order_id,
        min(shipped_at) as shipped_at,
        max(delivered_at) as delivered_at,
        max(carrier) as carrier
    from {{ ref('stg_shipments') }}
    where order_id is not null
    group by order_id
)

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.order_ts,
    o.status,
    o.channel,
    o.currency,
    o.amount,
    case when o.status in ('cancelled', 'returned') then CAST(0 AS DECIMAL(12,2)) else o.amount end as net_amount,
    coalesce(i.line_count, 0) as line_count,
    coalesce(i.units, 0) as units,
    coalesce(i.items_amount, 0) as items_amount,
    coalesce(p.payment_attempts, 0) as payment_attempts,
    coalesce(p.failed_payments, 0) as failed_payments,
    coalesce(p.captured_amount, 0) as captured_amount,
    coalesce(p.refunded_amount, 0) as refunded_amount,
    p.last_paid_at,
    s.carrier,
    s.shipped_at,
    s.delivered_at,
    case
        when s.delivered_at is not null and s.shipped_at is not null
            then round((CAST(date_part('epoch', s.delivered_at) AS DOUBLE) - CAST(date_part('epoch', s.shipped_at) AS DOUBLE)) / 3600.0, 2)
    end as hours_to_deliver,
    o.status in ('cancelled', 'returned') as is_cancelled_or_returned,
    o.dq_issue
from orders as o
left join items as i on i.order_id = o.order_id
left join payments as p on p.order_id = o.order_id
left join shipments as s on s.order_id = o.order_id
