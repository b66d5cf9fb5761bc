-- MetricFlow's day-grain time spine with a custom granularity (fiscal quarters starting in
-- February, May, August and November). The test creates public.metricflow_time_spine, which
-- steward reads through schema.yaml; this model is the same rows for MetricFlow.
{{ config(materialized='table') }}
select date_day, fiscal_quarter from public.metricflow_time_spine
