-- stg_order_items has exactly one row per (order_id, line_no): exact and near duplicates of
-- the Parquet feed must have been collapsed. Returns the offending keys.
select
    order_id,
    line_no,
    count(*) as n_rows
from {{ ref('stg_order_items') }}
group by order_id, line_no
having count(*) > 1
