-- The calendar: one row per day from var dim_date_start to var dim_date_end, generated (no
-- source). date_key is the date itself; fact tables join on their *_date column.
with spine as (
    {{ date_spine(var('dim_date_start'), var('dim_date_end')) }}
),

parts as (
    select
        date_day,
        CAST(date_part('year', date_day) AS INT) as year,
        CAST(date_part('quarter', date_day) AS INT) as quarter,
        CAST(date_part('month', date_day) AS INT) as month,
        CAST(date_part('day', date_day) AS INT) as day_of_month,
        CAST(date_part('dow', date_day) AS INT) as day_of_week,
        CAST(date_part('doy', date_day) AS INT) as day_of_year,
        CAST(date_trunc('week', date_day) AS DATE) as week_start,
        CAST(date_trunc('month', date_day) AS DATE) as month_start,
        CAST(date_trunc('quarter', date_day) AS DATE) as quarter_start
    from spine
)

select
    date_day as date_key,
    date_day,
    year,
    quarter,
    month,
    day_of_month,
    -- 0 = Sunday ... 6 = Saturday, as date_part('dow') on both engines
    day_of_week,
    case day_of_week
        when 0 then 'Sunday' when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday'
        when 4 then 'Thursday' when 5 then 'Friday' else 'Saturday'
    end as day_name,
    case month
        when 1 then 'January' when 2 then 'February' when 3 then 'March' when 4 then 'April'
        when 5 then 'May' when 6 then 'June' when 7 then 'July' when 8 then 'August'
        when 9 then 'September' when 10 then 'October' when 11 then 'November' else 'December'
    end as month_name,
    day_of_year,
    week_start,
    month_start,
    quarter_start,
    CAST(year AS VARCHAR) || '-Q' || CAST(quarter AS VARCHAR) as year_quarter,
    CAST(year AS VARCHAR) || '-' || lpad(CAST(month AS VARCHAR), 2, '0') as year_month,
    day_of_week in (0, 6) as is_weekend
from parts
