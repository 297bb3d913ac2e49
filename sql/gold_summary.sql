-- The numbers the demo ends with: what the gold star schema says about the shop.
SELECT order_date, orders, customers, gross_revenue, net_revenue
FROM gold.agg_daily_revenue
ORDER BY order_date;

SELECT
  (SELECT count(*) FROM gold.fct_orders) AS orders,
  (SELECT count(*) FROM gold.fct_order_items) AS order_lines,
  (SELECT count(*) FROM gold.dim_customers) AS customers,
  (SELECT count(*) FROM gold.dim_products) AS products,
  (SELECT count(*) FROM gold.fct_web_events) AS web_events;
