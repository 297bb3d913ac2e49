-- One row per order, cleaned: the kept version of each order_id (see int_order_versions),
-- without the orders that are rejected (stg_orders_rejected). A missing customer_id does not
-- reject an order (its revenue is real); it is flagged in dq_issue.
select
    order_id,
    customer_id,
    order_ts_parsed as order_ts,
    CAST(order_ts_parsed AS DATE) as order_date,
    status,
    amount_parsed as amount,
    currency,
    channel,
    dq_issue,
    n_versions,
    _file,
    _ingested_at
from {{ ref('int_order_versions') }}
where version_rank = 1
  and not is_rejected
