-- Daily revenue and traffic: one row per order day. Revenue is the net amount of the day's
-- clean orders (cancelled and returned orders count as orders, not as revenue); traffic and
-- conversion come from the web events of the same day.
with daily_orders as (
    select
        order_date,
        count(*) as orders,
        count(distinct customer_id) as customers,
        CAST(sum(case when is_cancelled_or_returned then 1 else 0 end) AS BIGINT) as cancelled_or_returned_orders,
        sum(amount) as gross_revenue,
        sum(net_amount) as net_revenue,
        CAST(sum(units) AS BIGINT) as units_sold,
        sum(captured_amount) as captured_amount
    from {{ ref('fct_orders') }}
    group by order_date
),

daily_web as (
    select
        event_date,
        count(*) as web_events,
        count(distinct session_id) as web_sessions,
        CAST(sum(case when event_type = 'purchase' then 1 else 0 end) AS BIGINT) as web_purchases
    from {{ ref('fct_web_events') }}
    group by event_date
)

select
    o.order_date,
    d.year,
    d.month,
    d.day_name,
    d.is_weekend,
    o.orders,
    o.customers,
    o.cancelled_or_returned_orders,
    CAST(o.gross_revenue AS DECIMAL(14,2)) as gross_revenue,
    CAST(o.net_revenue AS DECIMAL(14,2)) as net_revenue,
    CAST(o.captured_amount AS DECIMAL(14,2)) as captured_amount,
    o.units_sold,
    CAST(round(CAST(o.net_revenue AS DOUBLE) / CAST(o.orders AS DOUBLE), 2) AS DECIMAL(12,2)) as avg_order_value,
    coalesce(w.web_events, 0) as web_events,
    coalesce(w.web_sessions, 0) as web_sessions,
    coalesce(w.web_purchases, 0) as web_purchases,
    case
        when w.web_sessions > 0
            then round(CAST(w.web_purchases AS DOUBLE) / CAST(w.web_sessions AS DOUBLE), 4)
    end as purchase_rate_per_session
from daily_orders as o
left join {{ ref('dim_date') }} as d on d.date_day = o.order_date
left join daily_web as w on w.event_date = o.order_date
