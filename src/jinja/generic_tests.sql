{#- Strata's built-in generic data tests. Each returns the failing rows. A project may
    override one by defining a test (or a macro `test_<name>`) of the same name. -#}

{% test not_null(model, column_name) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- endtest %}

{% test unique(model, column_name) -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- endtest %}

{% test accepted_values(model, column_name, values, quote=true) -%}
with all_values as (
    select {{ column_name }} as value_field, count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
)
select value_field, n_records
from all_values
where value_field not in (
    {%- for value in values -%}
    {%- if quote -%}
    '{{ value | string | replace("'", "''") }}'
    {%- else -%}
    {{ value }}
    {%- endif -%}
    {%- if not loop.last %}, {% endif -%}
    {%- endfor -%}
)
{%- endtest %}

{% test relationships(model, column_name, to, field) -%}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),
parent as (
    select {{ field }} as to_field
    from {{ to }}
)
select child.from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null
{%- endtest %}

{#- dbt's: whether the test being rendered keeps its failing rows (its `store_failures`
    config, else `--store-failures`). -#}
{% macro should_store_failures() -%}
  {%- set configured = config.get('store_failures') -%}
  {%- if configured is none -%}
    {%- set configured = flags.STORE_FAILURES -%}
  {%- endif -%}
  {{ return(configured) }}
{%- endmacro %}
