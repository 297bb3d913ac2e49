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
  The raw token of a member of a flat JSON object held as text: a number, true/false/null,
  or a string with its quotes and escapes ("12\" pizza stone"). NULL if the key is absent.
  Bronze keeps nested JSON as text and no JSON functions are assumed (DataFusion 55 ships
  none), so this is a pattern: fine for the flat objects of this feed, not a JSON parser.
  The dialects differ here: DataFusion's regexp_match(s, p) returns the groups as a list,
  DuckDB's regexp_extract(s, p, 1) the group ('' when there is no match).
  The pattern is written out here, not passed through a Jinja string, so its backslashes
  reach the SQL as they are; a LIKE test first spares the pattern on rows without the key.
#}
{% macro json_raw(expr, key) -%}
  CASE WHEN {{ expr }} LIKE '%"{{ key }}":%' THEN
  {%- if shop_dialect() == 'duckdb' %}
    nullif(regexp_extract({{ expr }}, '"{{ key }}":("(?:[^"\\]|\\.)*"|[^,}\]]*)', 1), '')
  {%- else %}
    nullif(regexp_match({{ expr }}, '"{{ key }}":("(?:[^"\\]|\\.)*"|[^,}\]]*)')[1], '')
  {%- endif %}
  END
{%- endmacro %}


{# A string member of a flat JSON text, unquoted, with \" and \\ unescaped (other escapes,
   such as \u00e9, are left as they are). Numbers come back as their text. #}
{% macro json_text(expr, key) -%}
  replace(replace(regexp_replace({{ json_raw(expr, key) }}, '^"(.*)"$', '\1'), '\"', '"'), '\\', '\')
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
