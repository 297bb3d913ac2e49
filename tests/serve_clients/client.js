// node-postgres against a PostgreSQL-protocol server: parameterized queries (unnamed and named
// prepared statements), the types pg parses from text results, array row mode, SQLSTATEs, a
// connection that stays usable after errors, and a pool.
//
// Usage: NODE_PATH=<dir holding pg> node client.js HOST PORT DBNAME USER
// Expected data: JSON in $STRATA_EXPECT (see client.py). Prints `ok <check>` or
// `FAIL <check>: ...` per check; exits 1 when any failed.
'use strict';

const assert = require('node:assert');
const { Client, Pool } = require('pg');

const [host, port, database, user] = process.argv.slice(2);
const expect = JSON.parse(process.env.STRATA_EXPECT);
const config = { host, port: Number(port), database, user, application_name: 'strata-tests-node' };
let failures = 0;

function check(name, got, expected) {
  try {
    assert.deepStrictEqual(got, expected);
    console.log(`ok ${name}`);
  } catch (_) {
    failures += 1;
    console.log(`FAIL ${name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  }
}

async function attempt(name, fn) {
  try {
    await fn();
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}: ${e.code || ''} ${String(e.message).replace(/\n/g, ' | ')}`);
  }
}

async function main() {
  const client = new Client(config);
  await client.connect();
  const first = expect.first_order;

  // One query per type: (column, SQL expression, how pg parses the text it gets).
  const isDate = (d, parts) => d instanceof Date && [d.getFullYear(), d.getMonth(), d.getDate()].every((v, i) => v === parts[i]);
  const types = [
    ['i2', 'CAST(1 AS int2)', (v) => v === 1],
    ['i4', 'CAST(2 AS int4)', (v) => v === 2],
    ['i8', 'CAST(3000000000 AS int8)', (v) => v === '3000000000'], // pg keeps int8 as a string
    ['f8', 'CAST(2.25 AS float8)', (v) => v === 2.25],
    ['num', "CAST('12345678901234567890.123456789' AS numeric(38, 9))", (v) => v === '12345678901234567890.123456789'],
    ['t', "CAST('hello' AS text)", (v) => v === 'hello'],
    ['b', 'true', (v) => v === true],
    ['d', "DATE '2026-01-02'", (v) => isDate(v, [2026, 0, 2])],
    ['ts', "TIMESTAMP '2026-01-02 03:04:05.123'", (v) => v instanceof Date && v.getHours() === 3 && v.getMilliseconds() === 123],
    ['bin', "decode('0102ff', 'hex')", (v) => Buffer.isBuffer(v) && v.equals(Buffer.from([1, 2, 255]))],
    ['js', 'CAST(\'{"a": [1, 2]}\' AS json)', (v) => JSON.stringify(v) === '{"a":[1,2]}'],
    ['u', "CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS uuid)", (v) => v === 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['arr', 'ARRAY[1, 2, 3]', (v) => Array.isArray(v) && v.map(Number).join() === '1,2,3'],
    ['n', 'CAST(NULL AS int4)', (v) => v === null],
  ];
  for (const [name, expr, ok] of types) {
    await attempt(`types.${name} (${expr})`, async () => {
      const { rows } = await client.query(`SELECT ${expr} AS ${name}`);
      const v = rows[0][name];
      check(`types.${name}`, ok(v) ? 'as expected' : v, 'as expected');
    });
  }

  await attempt('params', async () => {
    // numeric with a declared scale: an unconstrained numeric is decimal(38, 10) in Strata
    // (DataFusion has no arbitrary-scale decimal), where PostgreSQL keeps the input's scale.
    let res = await client.query(
      'SELECT $1::int8 + 1 AS a, $2::text || \'x\' AS b, $3::numeric(10, 2) * 2 AS c, $4::date AS d, $5::bool AS e',
      [41, 'ab', '1.25', '2026-01-02', true],
    );
    const r = res.rows[0];
    check('params.int8', r.a, '42');
    check('params.text', r.b, 'abx');
    check('params.numeric', r.c, '2.50');
    check('params.date', r.d instanceof Date && r.d.getDate(), 2);
    check('params.bool', r.e, true);
    await attempt('params.null', async () => {
      const nulls = await client.query('SELECT $1::int4 IS NULL AS f, $2::text AS g', [null, null]);
      check('params.null', nulls.rows[0], { f: true, g: null });
    });
    res = await client.query('SELECT status, amount FROM gold.fct_orders WHERE order_id = $1', [first.order_id]);
    check('params.where_key', res.rows, [{ status: first.status, amount: first.amount }]);
    for (let i = 0; i < 3; i++) {
      res = await client.query({ name: 'count_by_status', text: 'SELECT count(*) AS n FROM gold.fct_orders WHERE status = $1', values: [first.status] });
      check(`params.named_statement.${i}`, Number(res.rows[0].n), expect.status_count);
    }
    res = await client.query({ text: 'SELECT order_id, status FROM gold.fct_orders ORDER BY order_id LIMIT 2', rowMode: 'array' });
    check('params.row_mode_array', res.rows.length === 2 && res.rows[0], [String(first.order_id), first.status]);
    check('params.fields', res.fields.map((f) => f.name), ['order_id', 'status']);
  });

  await attempt('orders', async () => {
    const res = await client.query('SELECT count(*) AS n, sum(amount) AS s FROM gold.fct_orders');
    check('orders.count', Number(res.rows[0].n), expect.orders);
    check('orders.sum', res.rows[0].s, expect.amount_sum);
  });

  const errors = [
    ['unknown_table', 'SELECT * FROM gold.no_such_table', '42P01'],
    ['unknown_column', 'SELECT no_such_column FROM gold.fct_orders', '42703'],
    ['syntax', 'SELEC 1', '42601'],
    ['division_by_zero', 'SELECT 1 / 0', '22012'],
    ['bad_cast_param', 'SELECT $1::int4', '22P02', ['abc']],
  ];
  for (const [name, sql, code, values] of errors) {
    await attempt(`errors.${name}`, async () => {
      let got = 'no error';
      try {
        await client.query(sql, values);
      } catch (e) {
        got = e.code;
      }
      check(`errors.${name}`, got, code);
      const { rows } = await client.query('SELECT 1 AS one');
      check(`errors.${name}.usable_after`, Number(rows[0].one), 1);
    });
  }

  await attempt('pool', async () => {
    const pool = new Pool({ ...config, max: 4 });
    const counts = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map(() => pool.query('SELECT count(*) AS n FROM gold.fct_orders')),
    );
    check('pool.concurrent', counts.map((r) => Number(r.rows[0].n)), Array(8).fill(expect.orders));
    await pool.end();
  });

  await client.end();
  console.log(`${failures ? 'FAILED' : 'PASSED'}: ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL main: ${e.stack}`);
  process.exit(1);
});
