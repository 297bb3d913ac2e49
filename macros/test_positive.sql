{#
  Generic test: every non-null value of the column is > 0 (or >= 0 with allow_zero=true).
  Fails with the offending rows.
    columns:
      - name: amount
        data_tests:
          - positive
          - positive:
              arguments:
                allow_zero: true
#}
{% test positive(model, column_name, allow_zero=false) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} {{ '<' if allow_zero else '<=' }} 0
{% endtest %}
