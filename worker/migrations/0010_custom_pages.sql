-- Custom pages: HTML that replaces one of the gateway's pages (a block page, the sign-in
-- error, not found, …) for one app (`app_id`) or every app (`*`). Written by operators
-- (`wrangler d1 execute`); read by the worker's `custom_pages` module, which fills the
-- placeholders ({{app_name}}, {{user_email}}, {{request_id}}, {{sign_in_url}},
-- {{sign_out_url}}, {{support_url}}, {{title}}, {{message}}) HTML-escaped.

CREATE TABLE custom_pages (
  app_id TEXT NOT NULL,   -- an app's id, or '*' for every app
  kind   TEXT NOT NULL,   -- identity_denied, non_identity_denied, sign_in_required,
                          -- sign_in_failed, groups_unavailable, signed_out, bad_request,
                          -- not_found, unavailable, error
  html   TEXT NOT NULL,   -- at most 64 KiB
  PRIMARY KEY (app_id, kind)
);
