-- Nothing on PostgreSQL. SQLite's 0008 moves every projection's position into one table, so
-- that a write moves them all with one statement; here each projection keeps the table the
-- library's tracking recorder creates for it, and a write already moves them all with one
-- statement (application/seams.py, insert_trackings). The number keeps both backends' lists
-- of migrations alike.
SELECT 1;
