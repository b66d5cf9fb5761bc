-- The demo table, unchanged.
select * from public.user_profiles
