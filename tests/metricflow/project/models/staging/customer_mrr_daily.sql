-- The demo table, unchanged.
select * from public.customer_mrr_daily
