-- Every version of each customer that a build has seen (SCD type 2): the CRM re-sends
-- customers in later drops with a changed email, city, segment or loyalty tier, and
-- stg_customers keeps only the latest; this keeps the history, one row per version with
-- dbt_valid_from / dbt_valid_to.
{% snapshot customers_history %}
{{
    config(
        target_schema='snapshots',
        unique_key='customer_id',
        strategy='check',
        check_cols=['email', 'city', 'segment', 'loyalty_tier'],
    )
}}
select customer_id, first_name, last_name, email, city, country_code, segment, loyalty_tier
from {{ ref('stg_customers') }}
{% endsnapshot %}
