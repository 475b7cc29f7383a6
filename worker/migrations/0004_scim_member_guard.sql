-- A group write that adds members it has not read first inserts NULL here when one of them is
-- neither a user nor a group, failing (and rolling back) the whole batch.

CREATE TABLE scim_member_guard (
  must_not_be_null INTEGER NOT NULL
);
