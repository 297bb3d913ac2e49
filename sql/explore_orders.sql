-- A first look at the raw orders: how dirty is the status column, and how much arrived late?
SELECT status, count(*) AS orders
FROM bronze.shop_orders
GROUP BY status
ORDER BY orders DESC;

-- Which raw files contributed rejected records, and why.
SELECT _file, count(*) AS rejected, min(reason) AS example_reason
FROM bronze.shop_orders__rejected
GROUP BY _file
ORDER BY _file;
