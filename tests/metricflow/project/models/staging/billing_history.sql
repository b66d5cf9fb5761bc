-- The demo table, unchanged.
select * from public.billing_history
