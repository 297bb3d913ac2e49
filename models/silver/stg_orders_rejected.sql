-- Orders that no gold fact can use, one row per order_id with the reason (dq_issue) and the
-- raw values that caused it: an unparseable or impossible timestamp, a missing or negative
-- amount, an unknown status. Together with stg_orders this accounts for every order_id.
select
    order_id,
    customer_id,
    order_ts_raw,
    order_ts_parsed,
    status_raw,
    status,
    amount_raw,
    amount_parsed,
    dq_issue,
    n_versions,
    _file,
    _ingested_at
from {{ ref('int_order_versions') }}
where version_rank = 1
  and is_rejected
