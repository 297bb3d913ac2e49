-- Customers, with country names and regions from the country_names seed and lifetime order
-- figures from the clean orders (cancelled and returned orders do not count as revenue).
with customers as (
    select * from {{ ref('stg_customers') }}
),

countries as (
    select
        upper(trim(CAST(country_code AS VARCHAR))) as country_code,
        CAST(country_name AS VARCHAR) as country_name,
        CAST(region AS VARCHAR) as region
    from {{ ref('country_names') }}
),

order_stats as (
    select
        customer_id,
        count(*) as lifetime_orders,
        sum(case when status not in ('cancelled', 'returned') then amount else 0 end) as lifetime_revenue,
        min(order_ts) as first_order_at,
        max(order_ts) as last_order_at
    from {{ ref('stg_orders') }}
    where customer_id is not null
    group by customer_id
)

select
    c.customer_id as customer_key,
    c.customer_id,
    c.first_name,
    c.last_name,
    c.first_name || ' ' || c.last_name as full_name,
    c.email,
    c.phone,
    c.city,
    c.country_code,
    coalesce(k.country_name, 'Unknown') as country_name,
    coalesce(k.region, 'Unknown') as region,
    c.segment,
    coalesce(c.loyalty_tier, 'none') as loyalty_tier,
    c.signup_date,
    coalesce(s.lifetime_orders, 0) as lifetime_orders,
    CAST(coalesce(s.lifetime_revenue, 0) AS DECIMAL(14,2)) as lifetime_revenue,
    s.first_order_at,
    s.last_order_at,
    c.dq_issue
from customers as c
left join countries as k on k.country_code = c.country_code
left join order_stats as s on s.customer_id = c.customer_id
