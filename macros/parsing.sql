{#
  Parsing the feeds' mixed spellings. Each macro takes a SQL expression (a column of any type:
  bronze types columns by what their values fit, so the same column may be text on one engine
  and an integer on the other) and yields a typed value or NULL, never an error.
#}

{#
  A business timestamp as a UTC TIMESTAMP (no time zone). Accepted spellings:
    2026-01-31T14:05:09Z, 2026-01-31T14:05:09.123Z, 2026-01-31T16:05:09+02:00 (converted to UTC),
    2026-01-31 14:05:09 (taken as UTC), 01/31/2026 14:05 (US, UTC),
    1769868309 (epoch seconds), 1769868309123 (epoch milliseconds: 12 digits or more).
  Anything else is NULL. Out-of-range values (1900, 2099) are parsed; see ts_in_range.
  `expr` should be trimmed text (clean_text). Cheap LIKE tests pick the branch, so the common
  ISO spelling costs no regular expression; every branch is guarded, so no parser ever
  raises. DataFusion's CAST to TIMESTAMP applies an explicit offset; DuckDB's ignores it, so
  DuckDB goes through TIMESTAMPTZ (see tz_text_to_utc).
#}
{% macro parse_ts(expr) -%}
  {%- set s = "CAST(" ~ expr ~ " AS VARCHAR)" -%}
  CASE
    WHEN {{ s }} LIKE '____-__-__T__:__%' THEN {{ tz_text_to_utc(s) }}
    WHEN {{ s }} LIKE '____-__-__ __:__%' THEN TRY_CAST({{ s }} AS TIMESTAMP)
    WHEN {{ s }} LIKE '__/__/____ __:__'
      THEN TRY_CAST(regexp_replace({{ s }}, '^([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}:[0-9]{2})$', '\3-\1-\2 \4:00') AS TIMESTAMP)
    WHEN {{ s }} ~ '^-?[0-9]{12,}$' THEN {{ epoch_to_ts("TRY_CAST(" ~ s ~ " AS BIGINT)", 'ms') }}
    WHEN {{ s }} ~ '^-?[0-9]{1,11}$' THEN {{ epoch_to_ts("TRY_CAST(" ~ s ~ " AS BIGINT)", 's') }}
  END
{%- endmacro %}


{# Epoch seconds or milliseconds (a BIGINT expression) as a TIMESTAMP. #}
{% macro epoch_to_ts(expr, unit) -%}
  {%- if shop_dialect() == 'duckdb' -%}
    make_timestamp({{ expr }} * {{ 1000 if unit == 'ms' else 1000000 }})
  {%- elif unit == 'ms' -%}
    CAST(to_timestamp_millis({{ expr }}) AS TIMESTAMP)
  {%- else -%}
    CAST(to_timestamp_seconds({{ expr }}) AS TIMESTAMP)
  {%- endif -%}
{%- endmacro %}


{# ISO 8601 text (2026-01-31T16:05:09+02:00, ...Z, or without a zone, taken as UTC) as a UTC
   TIMESTAMP. DuckDB reads a zone only through TIMESTAMPTZ, and reads zoneless text there in
   the session's zone, so the two cases are told apart first. #}
{% macro tz_text_to_utc(expr) -%}
  {%- if shop_dialect() == 'duckdb' -%}
    CASE
      WHEN {{ expr }} LIKE '%Z' OR {{ expr }} LIKE '%+__:__' OR {{ expr }} LIKE '%-__:__'
        THEN timezone('UTC', TRY_CAST({{ expr }} AS TIMESTAMPTZ))
      ELSE TRY_CAST({{ expr }} AS TIMESTAMP)
    END
  {%- else -%}
    TRY_CAST({{ expr }} AS TIMESTAMP)
  {%- endif -%}
{%- endmacro %}


{# Whether a parsed timestamp is a possible business time (vars min_valid_ts / max_valid_ts). #}
{% macro ts_in_range(expr) -%}
  ({{ expr }} >= TIMESTAMP '{{ var("min_valid_ts") }}' AND {{ expr }} < TIMESTAMP '{{ var("max_valid_ts") }}')
{%- endmacro %}


{#
  A calendar date from 2026-01-31 (ISO), 01/31/2026 (US) or 31.01.2026 (European); NULL for
  anything else. Pure SQL, the same on both engines.
#}
{% macro parse_date(expr) -%}
  {%- set s = "trim(CAST(" ~ expr ~ " AS VARCHAR))" -%}
  CASE
    WHEN {{ s }} ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN TRY_CAST({{ s }} AS DATE)
    WHEN {{ s }} ~ '^[0-9]{2}/[0-9]{2}/[0-9]{4}$'
      THEN TRY_CAST(regexp_replace({{ s }}, '^([0-9]{2})/([0-9]{2})/([0-9]{4})$', '\3-\1-\2') AS DATE)
    WHEN {{ s }} ~ '^[0-9]{2}[.][0-9]{2}[.][0-9]{4}$'
      THEN TRY_CAST(regexp_replace({{ s }}, '^([0-9]{2})[.]([0-9]{2})[.]([0-9]{4})$', '\3-\2-\1') AS DATE)
  END
{%- endmacro %}


{#
  A money amount as DECIMAL(12,2) from a number or a currency string: 1234.5, "1234.50",
  "$1,234.50", "-$1,234.50". NULL if nothing numeric is left. Sign is kept (negative amounts
  are out of range and flagged by the models, not here). The plain number is tried first, so
  only currency strings pay for the pattern.
#}
{% macro parse_amount(expr, type='DECIMAL(12,2)') -%}
  coalesce(
    TRY_CAST(CAST({{ expr }} AS VARCHAR) AS {{ type }}),
    TRY_CAST(nullif(regexp_replace(CAST({{ expr }} AS VARCHAR), '[$,"[:space:]]', '', 'g'), '') AS {{ type }})
  )
{%- endmacro %}


{# A decimal from a floating-point column, rounded first so float noise (1648.489990234375
   from a FLOAT32 1648.49) never reaches the decimal cast. #}
{% macro float_to_decimal(expr, scale=2, type='DECIMAL(12,2)') -%}
  CAST(round(CAST({{ expr }} AS DOUBLE), {{ scale }}) AS {{ type }})
{%- endmacro %}


{#
  Order status in one spelling: 'pending', 'paid', 'shipped', 'delivered', 'cancelled',
  'returned' (upstream systems write PAID, ' Shipped', 'Canceled', ...). Unknown values pass
  through lower-cased and trimmed, so an accepted_values test catches them.
#}
{% macro normalize_status(expr) -%}
  CASE lower(trim(CAST({{ expr }} AS VARCHAR)))
    WHEN 'canceled' THEN 'cancelled'
    ELSE lower(trim(CAST({{ expr }} AS VARCHAR)))
  END
{%- endmacro %}


{# Position of a normalized order status in the order lifecycle; re-sent orders keep the most
   advanced one. #}
{% macro status_rank(expr) -%}
  CASE {{ expr }}
    WHEN 'pending' THEN 1
    WHEN 'paid' THEN 2
    WHEN 'shipped' THEN 3
    WHEN 'delivered' THEN 4
    WHEN 'cancelled' THEN 5
    WHEN 'returned' THEN 6
    ELSE 0
  END
{%- endmacro %}


{# The list of accepted order statuses, for SQL IN lists (tests use the yml list). #}
{% macro order_statuses() -%}
  ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'returned')
{%- endmacro %}


{# A contiguous daily date spine as rows of `date_day` (inclusive bounds, 'YYYY-MM-DD'). #}
{% macro date_spine(start_date, end_date) -%}
  SELECT CAST(d AS DATE) AS date_day
  FROM (
    SELECT unnest(generate_series(DATE '{{ start_date }}', DATE '{{ end_date }}', INTERVAL '1 day')) AS d
  ) AS spine
{%- endmacro %}
