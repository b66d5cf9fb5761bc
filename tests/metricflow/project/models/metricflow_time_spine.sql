-- MetricFlow's day-grain time spine (cumulative metrics join to it).
{{ config(materialized='table') }}
select d::date as date_day
from generate_series('2000-01-01'::date, '2040-12-31'::date, interval '1 day') as d
