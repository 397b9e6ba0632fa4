-- The order whose use was last cancelled: lets a retried cancel answer 200 instead of 409.
ALTER TABLE coupons ADD COLUMN cancelled_order_id BIGINT;
