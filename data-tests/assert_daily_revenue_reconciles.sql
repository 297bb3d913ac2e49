{{ config(severity='error') }}
-- The gold aggregate adds up to the fact it is built from: total net revenue and order
-- count of agg_daily_revenue equal those of fct_orders. Returns a row if they differ.
with agg as (
    select sum(net_revenue) as net_revenue, sum(orders) as orders
    from {{ ref('agg_daily_revenue') }}
),

fct as (
    select sum(net_amount) as net_revenue, count(*) as orders
    from {{ ref('fct_orders') }}
)

select
    agg.net_revenue as agg_net_revenue,
    fct.net_revenue as fct_net_revenue,
    agg.orders as agg_orders,
    fct.orders as fct_orders
from agg
cross join fct
where abs(CAST(agg.net_revenue AS DOUBLE) - CAST(fct.net_revenue AS DOUBLE)) > 0.005
   or agg.orders <> fct.orders
