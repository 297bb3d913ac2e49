#!/usr/bin/env python3
"""Runs the shop project's DataFusion SQL on Strata, until `strata build` exists.

dbt renders the project with the DataFusion branch of the dialect macros
(`--vars '{sql_dialect: datafusion}'`) and the repository's own models/sources.yml (Strata's
bronze tables). This script then rewrites dbt-duckdb's relation names to Strata's (source
shop.orders -> bronze.shop_orders; silver.x -> silver__x, gold.x -> gold__x in the session's
default schema, since silver and gold are Strata's own model schemas), orders the models by
their dependencies and writes one SQL script that `strata sql -f` runs in one session: each
model materialized with CREATE TABLE ... AS, the seed read with CREATE EXTERNAL TABLE, every
data test counted, and the row count of every model printed. Exit status 1 if an
error-severity test fails or Strata rejects the SQL.

Usage (from the project directory, after `strata land`):
  ~/.cache/strata/dbt-venv/bin/python bench/dbt_duckdb/strata_check.py [--incremental]
      [--strata PATH] [--project-dir DIR] [--lake PATH] [--out FILE] [--vars YAML]

--incremental also renders the incremental models as a second run would (is_incremental()
true) and counts the rows their SELECT returns after the first run: 0 on unchanged bronze.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RELATION = re.compile(r'"[^"]+"\."(bronze|silver|gold|main)"\."([^"]+)"')


def strata_name(match):
    schema, name = match.group(1), match.group(2)
    if schema == "bronze":
        return f"bronze.shop_{name}"
    return local_name(schema, name)


def local_name(schema, name):
    # silver and gold are Strata's own model schemas (Delta tables written by models), so the
    # check materializes its in-memory tables in the session's default schema instead.
    return f"{schema}__{name}"


def rewrite(sql):
    return RELATION.sub(strata_name, sql).strip().rstrip(";")


def topo(nodes):
    order, seen = [], set()

    def visit(uid):
        if uid in seen or uid not in nodes:
            return
        seen.add(uid)
        for dep in nodes[uid].get("depends_on", {}).get("nodes", []):
            visit(dep)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return order


def compile_project(args, project, work, db_name, vars_):
    """dbt compile against the DuckDB file `db_name` (in `work`); returns the manifest's nodes."""
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    env["SHOP_DUCKDB_PATH"] = os.path.join(work, db_name)
    env.setdefault("SHOP_DROP", work)
    subprocess.run(
        [args.dbt, "compile", "--quiet", "--no-partial-parse", "--project-dir", project,
         "--profiles-dir", HERE, "--vars", vars_],
        check=True, env=env, cwd=project)
    manifest = json.load(open(os.path.join(project, "target", "manifest.json")))
    return {u: n for u, n in manifest["nodes"].items()
            if n["resource_type"] in ("model", "seed", "test")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default=os.environ.get("STRATA", "strata"))
    ap.add_argument("--lake", default=None)
    ap.add_argument("--project-dir", default=REPO, help="Strata project dir (strata.toml)")
    ap.add_argument("--out", default=None, help="also write the SQL script here")
    ap.add_argument("--incremental", action="store_true",
                    help="also run the incremental models' SELECTs as a second run renders them")
    ap.add_argument("--vars", default="{}", help="more dbt vars, as YAML (e.g. '{source_drift: false}')")
    ap.add_argument("--dbt", default=os.path.expanduser("~/.cache/strata/dbt-venv/bin/dbt"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="shop_strata_check_")
    project = os.path.join(work, "project")
    os.makedirs(project)
    shutil.copy(os.path.join(REPO, "dbt_project.yml"), project)
    for d in ("models", "macros", "seeds", "data-tests", "snapshots"):
        if os.path.isdir(os.path.join(REPO, d)):
            shutil.copytree(os.path.join(REPO, d), os.path.join(project, d))
    import yaml  # ships with dbt
    vars_ = json.dumps({**(yaml.safe_load(args.vars) or {}), "sql_dialect": "datafusion"})
    nodes = compile_project(args, project, work, "full.duckdb", vars_)

    stmts, checks, counts, incremental = [], [], [], []
    for uid in topo(nodes):
        n = nodes[uid]
        kind, name, schema = n["resource_type"], n["name"], n["schema"]
        if kind == "seed":
            path = os.path.join(REPO, n["original_file_path"])
            stmts.append(f"CREATE EXTERNAL TABLE {local_name(schema, name)} STORED AS CSV LOCATION '{path}' "
                         "OPTIONS ('format.has_header' 'true')")
        elif kind == "model":
            stmts.append(f"CREATE TABLE {local_name(schema, name)} AS {rewrite(n['compiled_code'])}")
            counts.append(f"SELECT '{schema}.{name}' AS relation, count(*) AS n_rows FROM {local_name(schema, name)}")
            if n["config"]["materialized"] == "incremental":
                incremental.append((schema, name))
        elif kind == "test":
            sev = n["config"].get("severity", "error")
            checks.append(f"SELECT '{name}' AS test, '{sev.lower()}' AS severity, count(*) AS failures "
                          f"FROM ({rewrite(n['compiled_code'])}) AS t")

    if args.incremental and incremental:
        # dbt's is_incremental() is true when the model's relation exists: stub them in a
        # DuckDB file, compile again, and count what a second run on the same data would add.
        import duckdb
        con = duckdb.connect(os.path.join(work, "incremental.duckdb"))
        for schema, name in incremental:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE TABLE {schema}.{name} (stub INTEGER)")
        con.close()
        again = compile_project(args, project, work, "incremental.duckdb", vars_)
        for uid, n in again.items():
            if n["resource_type"] == "model" and n["config"]["materialized"] == "incremental":
                counts.append(f"SELECT '{n['schema']}.{n['name']} (2nd run adds)' AS relation, "
                              f"count(*) AS n_rows FROM ({rewrite(n['compiled_code'])}) AS q")

    script = ";\n".join(stmts + [" UNION ALL ".join(counts)] + ([" UNION ALL ".join(checks)] if checks else [])) + ";\n"
    if args.out:
        open(args.out, "w").write(script)
    script_path = os.path.join(work, "strata_check.sql")
    open(script_path, "w").write(script)

    cmd = [args.strata, "--project-dir", args.project_dir]
    if args.lake:
        cmd += ["--lake", args.lake]
    cmd += ["sql", "--format", "csv", "-f", script_path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        print(f"strata sql failed; script kept at {script_path}", file=sys.stderr)
        return 1
    # Results come as CSV blocks, one per query, each starting with its header line.
    blocks = re.split(r"\n(?=relation,n_rows\n|test,severity,failures\n)", "\n" + proc.stdout)
    failed = 0
    for block in blocks:
        block = block.strip()
        if block.startswith("relation,n_rows"):
            print("row counts (Strata):")
            for row in csv.DictReader(io.StringIO(block)):
                print(f"  {row['relation']:<45} {row['n_rows']:>10}")
        elif block.startswith("test,severity,failures"):
            rows = list(csv.DictReader(io.StringIO(block)))
            bad = [r for r in rows if int(r["failures"]) > 0]
            errors = [r for r in bad if r["severity"] == "error"]
            failed = len(errors)
            print(f"tests (Strata): {len(rows) - len(bad)} passed, {len(bad) - len(errors)} warned, {len(errors)} failed")
            for r in bad:
                print(f"  {r['severity'].upper():<5} {r['test']}: {r['failures']} rows")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
