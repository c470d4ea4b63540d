-- Nothing on PostgreSQL (see 0008_projection_tracking.up.sql).
SELECT 1;
