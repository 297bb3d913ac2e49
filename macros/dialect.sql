{#
  Dialect shims. Model SQL is shared by Strata (DataFusion 55) and the dbt-duckdb twin; the few
  constructs that differ are wrapped in these macros, which branch on the engine.

  shop_dialect() is 'duckdb' on a duckdb target and 'datafusion' on anything else (Strata's
  target.type is 'strata'). The var `sql_dialect` forces one, so `dbt compile --vars
  '{sql_dialect: datafusion}'` on the twin renders exactly the SQL Strata runs.

  Portable without a shim (checked on both engines): TRY_CAST, CAST(.. AS DECIMAL(p,s)),
  regexp_replace(s, p, r, 'g') with \1 back-references, `~` with ^...$-anchored patterns (DuckDB
  full-matches, DataFusion searches: anchoring makes them agree), date_trunc, date_part,
  row_number() OVER (... NULLS LAST), count(DISTINCT), nullif, coalesce, greatest, lpad,
  split_part, unnest(generate_series(DATE, DATE, INTERVAL '1 day')).
  Not portable: integer `/` (DataFusion truncates: always cast to DOUBLE first), QUALIFY
  (DataFusion has none: filter row_number() in an outer query), DATE + INTERVAL (a DATE in
  DataFusion, a TIMESTAMP in DuckDB: cast the result).
#}

{% macro shop_dialect() -%}
  {%- if var('sql_dialect', target.type) == 'duckdb' -%}duckdb{%- else -%}datafusion{%- endif -%}
{%- endmacro %}


{# TRY_CAST spelled once, so a future engine without it needs one change. #}
{% macro safe_cast(expr, type) -%}
  TRY_CAST({{ expr }} AS {{ type }})
{%- endmacro %}


{# A text value trimmed, with '' as NULL (CSV and XML readers differ on empty fields). #}
{% macro clean_text(expr) -%}
  nullif(trim(CAST({{ expr }} AS VARCHAR)), '')
{%- endmacro %}


{# BIGINT from an integer or text column ("123", " 123 "); NULL if it is not an integer. #}
{% macro to_bigint(expr) -%}
  TRY_CAST(nullif(trim(CAST({{ expr }} AS VARCHAR)), '') AS BIGINT)
{%- endmacro %}


{#
  A member of a JSON object held as text, as text: strings unquoted and unescaped, numbers
  and booleans spelled as in the JSON, NULL when the key is absent or null. Bronze keeps
  nested JSON as text; both engines read it with PostgreSQL's `->>` operator (DuckDB's JSON
  extension, and the datafusion-functions-json functions every Strata session registers).
#}
{% macro json_text(expr, key) -%}
  ({{ expr }} ->> '{{ key }}')
{%- endmacro %}


{#
  A column that schema drift added to a source (loyalty_tier, order_total, fee, device).
  Bronze tables are the union of their files' columns, so the column exists only if some
  landed file has it: data generated with --no-drift, --clean or --batches 1 has none. Set
  var source_drift: false for such data and the column reads as NULL instead.
#}
{% macro drift_column(name, type='VARCHAR') -%}
  {%- if var('source_drift', true) -%}
    {{ name }}
  {%- else -%}
    CAST(NULL AS {{ type }})
  {%- endif -%}
{%- endmacro %}
