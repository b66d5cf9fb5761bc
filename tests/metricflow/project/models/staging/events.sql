-- The demo table, unchanged.
select * from public.events
