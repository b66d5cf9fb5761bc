-- The demo table, unchanged.
select * from public.support_tickets
