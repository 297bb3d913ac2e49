-- Every order_id in bronze ends up in exactly one of stg_orders (usable) and
-- stg_orders_rejected (with a reason): cleaning never loses an order silently.
-- Returns the order_ids that are missing or in both.
with bronze as (
    select distinct order_id
    from {{ ref('int_order_versions') }}
    where order_id is not null
),

kept as (
    select order_id, 1 as n from {{ ref('stg_orders') }}
    union all
    select order_id, 1 as n from {{ ref('stg_orders_rejected') }}
),

counted as (
    select order_id, sum(n) as n
    from kept
    group by order_id
)

select
    coalesce(b.order_id, c.order_id) as order_id,
    coalesce(c.n, 0) as times_kept
from bronze as b
full outer join counted as c on c.order_id = b.order_id
where c.n is null or c.n <> 1 or b.order_id is null
