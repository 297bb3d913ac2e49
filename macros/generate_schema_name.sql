{#
  Lakehouse layer names are schemas as written: +schema: silver builds into `silver`, not
  `<target schema>_silver` (dbt's default). Models without a custom schema use the target's.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
