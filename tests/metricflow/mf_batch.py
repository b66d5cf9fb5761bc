"""Runs MetricFlow queries in one process, as `mf query` does, and prints the rows.

Usage: DBT_PROJECT_DIR=... DBT_PROFILES_DIR=... python mf_batch.py < queries.json

Input: a JSON list of {"id", "metrics", "group_by", "where", "start", "end"} or
{"id", "saved_query", "start", "end"}
(start and end are inclusive ISO dates, as `mf query --start-time/--end-time`).
Output: one JSON object per line: {"id", "columns", "rows", "seconds"} or
{"id", "error"}. Values are printed as JSON numbers or ISO text.

This drives the same objects the `mf` command line builds (dbt-metricflow's
CLIConfiguration and MetricFlowEngine) so hundreds of queries share one
parse of the project instead of paying for it per query.
"""

import datetime as dt
import decimal
import json
import pathlib
import os
import sys
import time

from dbt_metricflow.cli.cli_configuration import CLIConfiguration
from metricflow.engine.metricflow_engine import MetricFlowQueryRequest


def value(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def main():
    cfg = CLIConfiguration()
    cfg.setup(dbt_project_path=pathlib.Path(os.environ["DBT_PROJECT_DIR"]),
              dbt_profiles_path=pathlib.Path(os.environ["DBT_PROFILES_DIR"]))
    for q in json.load(sys.stdin):
        started = time.perf_counter()
        try:
            request = MetricFlowQueryRequest.create(
                saved_query_name=q.get("saved_query"),
                metric_names=q.get("metrics") or None,
                group_by_names=q.get("group_by") or None,
                where_constraints=q.get("where") or None,
                time_constraint_start=dt.datetime.fromisoformat(q["start"]) if q.get("start") else None,
                time_constraint_end=dt.datetime.fromisoformat(q["end"]) if q.get("end") else None,
            )
            result = cfg.mf.query(mf_request=request)
            df = result.result_df
            out = {
                "id": q["id"],
                "columns": list(df.column_names),
                "rows": [[value(v) for v in row] for row in df.rows],
                "seconds": time.perf_counter() - started,
            }
        except Exception as e:  # reported per query; the run goes on
            out = {"id": q["id"], "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
