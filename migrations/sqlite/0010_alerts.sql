-- Threshold alerts (src/subscriptions): a subscription that delivers only when
-- its metric crosses a threshold. JSON {"metric", "above", "threshold"}; NULL for plain subscriptions.
ALTER TABLE subscriptions ADD COLUMN alert TEXT;
