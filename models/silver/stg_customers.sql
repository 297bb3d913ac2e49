-- One row per customer: the latest version of each customer_id.
-- The CRM re-sends customers in later drops with a changed email or city, and near-duplicates
-- within a drop differ only by case (an upper-cased email) or a trailing space (city), which
-- the normalization below erases. "Latest" is the most recently landed file (ties: the file
-- name, which carries the batch order). Rows without a customer_id cannot be keyed and are
-- dropped; dq_issue flags what is wrong with a kept row.
with src as (
    select
        {{ to_bigint('customer_id') }} as customer_id,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('phone') }} as phone,
        upper({{ clean_text('country') }}) as country_code,
        {{ clean_text('city') }} as city,
        {{ clean_text('signup_date') }} as signup_date_raw,
        lower({{ clean_text('segment') }}) as segment,
        lower({{ clean_text(drift_column('loyalty_tier')) }}) as loyalty_tier,
        _file,
        _ingested_at
    from {{ source('shop', 'customers') }}
),

parsed as (
    select
        src.*,
        {{ parse_date('signup_date_raw') }} as signup_date_parsed
    from src
    where customer_id is not null
),

ranked as (
    select
        parsed.*,
        row_number() over (
            partition by customer_id
            order by _ingested_at desc, _file desc, email nulls last, city, signup_date_raw
        ) as version_rank,
        count(*) over (partition by customer_id) as n_versions
    from parsed
)

select
    customer_id,
    first_name,
    last_name,
    email,
    phone,
    country_code,
    city,
    case
        when {{ ts_in_range('CAST(signup_date_parsed AS TIMESTAMP)') }} then signup_date_parsed
    end as signup_date,
    segment,
    loyalty_tier,
    case
        when email is null then 'missing_email'
        when signup_date_parsed is null then 'unparseable_signup_date'
        when not {{ ts_in_range('CAST(signup_date_parsed AS TIMESTAMP)') }} then 'signup_date_out_of_range'
    end as dq_issue,
    n_versions,
    _file,
    _ingested_at
from ranked
where version_rank = 1
