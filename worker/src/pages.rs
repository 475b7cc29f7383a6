//! The pages the gateway answers with. Each names what it knows of the request — the app, the
//! signed-in address, the request id support can find the log line by — and offers the next
//! step (sign in with another account, sign out, get help); none says which check failed.
//!
//! Plain HTML in the configured design ([`LoginDesign`]): a `lang`, a `main` landmark with
//! one `h1`, links a keyboard reaches in order with a visible focus ring, colours that
//! contrast at least 4.5:1, no script and a `Content-Security-Policy` that would run none.
//! Every configured or received string is escaped. A custom page ([`Template`]) replaces the
//! default one; what it is filled with is escaped too.

use worker::{Headers, Response};

use crate::custom_pages::{Slot, Template};
use crate::endpoints::{Endpoints, DEFAULT_PREFIX};
use crate::login_design::LoginDesign;

/// Which page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No valid credentials (an API client): 401.
    SignInRequired,
    /// The policies refused a signed-in user.
    Denied,
    /// Refused on grounds no sign-in changes (network, country, device).
    DeniedNonIdentity,
    /// The sign-in protocol failed.
    SignInFailed,
    /// Group memberships could not be read.
    GroupsUnavailable,
    /// After logout.
    SignedOut,
    BadRequest,
    NotFound,
    Unavailable,
    Error,
}

impl Kind {
    /// Every kind, for the custom pages' `kind` column.
    pub const ALL: [Kind; 10] = [
        Kind::SignInRequired,
        Kind::Denied,
        Kind::DeniedNonIdentity,
        Kind::SignInFailed,
        Kind::GroupsUnavailable,
        Kind::SignedOut,
        Kind::BadRequest,
        Kind::NotFound,
        Kind::Unavailable,
        Kind::Error,
    ];

    /// Its name in the `custom_pages` table.
    pub fn key(self) -> &'static str {
        match self {
            Kind::SignInRequired => "sign_in_required",
            Kind::Denied => "identity_denied",
            Kind::DeniedNonIdentity => "non_identity_denied",
            Kind::SignInFailed => "sign_in_failed",
            Kind::GroupsUnavailable => "groups_unavailable",
            Kind::SignedOut => "signed_out",
            Kind::BadRequest => "bad_request",
            Kind::NotFound => "not_found",
            Kind::Unavailable => "unavailable",
            Kind::Error => "error",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::SignInRequired => "Sign-in required",
            Kind::Denied | Kind::DeniedNonIdentity => "Access denied",
            Kind::SignInFailed | Kind::GroupsUnavailable => "Sign-in could not finish",
            Kind::SignedOut => "Signed out",
            Kind::BadRequest => "Bad request",
            Kind::NotFound => "Not found",
            Kind::Unavailable => "Temporarily unavailable",
            Kind::Error => "Something went wrong",
        }
    }

    /// Whether signing in (again, or as someone else) may help.
    fn offers_sign_in(self) -> bool {
        matches!(
            self,
            Kind::SignInRequired
                | Kind::Denied
                | Kind::SignInFailed
                | Kind::GroupsUnavailable
                | Kind::SignedOut
        )
    }
}

/// What a page knows of the request it answers; everything is optional.
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame<'a> {
    /// The pages' design (the default without).
    pub design: Option<&'a LoginDesign>,
    /// Where the sign-in and logout endpoints are (the default prefix without).
    pub endpoints: Option<&'a Endpoints>,
    /// The id the request's log line carries.
    pub request_id: Option<&'a str>,
    /// The app's name.
    pub app: Option<&'a str>,
    /// The signed-in user's address.
    pub email: Option<&'a str>,
    /// Whether there is a session to sign out of (a refused sign-in names the user but set
    /// none).
    pub session: bool,
    /// Where a new sign-in goes back to (a local path).
    pub return_to: Option<&'a str>,
    /// The custom page that replaces this one.
    pub custom: Option<&'a Template>,
}

impl Frame<'_> {
    fn endpoint(&self, name: &str) -> String {
        match self.endpoints {
            Some(endpoints) => endpoints.path(name),
            None => format!("{DEFAULT_PREFIX}/{name}"),
        }
    }

    /// `{prefix}/login?redirect_url=…&interactive=1`: a sign-in Entra asks for, whoever is
    /// signed in there already.
    pub fn sign_in_url(&self) -> String {
        let mut query = worker::url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("redirect_url", self.return_to.unwrap_or("/"))
            .append_pair("interactive", "1");
        format!("{}?{}", self.endpoint("login"), query.finish())
    }

    pub fn sign_out_url(&self) -> String {
        self.endpoint("logout")
    }
}

/// The page of `kind` with `status`; `message` (an app's `custom_deny_message`) replaces the
/// default text, as text.
pub fn page(kind: Kind, message: Option<&str>, frame: &Frame, status: u16) -> Response {
    let design = frame.design.cloned().unwrap_or_default();
    let body = match frame.custom {
        Some(template) => fill(template, kind, message, frame),
        None => page_body(kind, message, frame, &design),
    };
    with_csp(respond(body, status), &design)
}

/// The default text of `kind`, with the app and the address where known.
fn message_text(kind: Kind, frame: &Frame) -> String {
    let app = frame.app.unwrap_or("this application");
    match kind {
        Kind::SignInRequired => format!("You need to sign in to reach {app}."),
        Kind::Denied => match frame.email {
            Some(email) => {
                format!(
                    "You are signed in as {email}, but you do not have access to {app} with this account."
                )
            }
            None => format!("You signed in, but you do not have access to {app}."),
        },
        Kind::DeniedNonIdentity => format!("Access to {app} is not available from here."),
        Kind::SignInFailed => format!(
            "The sign-in to {app} could not be completed. Sign in again, or go back to the application."
        ),
        Kind::GroupsUnavailable => "Your group memberships could not be read from the directory, so access cannot be decided. Try again shortly.".to_owned(),
        Kind::SignedOut => format!("You are signed out of {app}."),
        Kind::BadRequest => "The address of this request is not accepted.".to_owned(),
        Kind::NotFound => "There is no application at this address.".to_owned(),
        Kind::Unavailable => format!("{app} cannot be reached right now. Try again shortly."),
        Kind::Error => "The gateway cannot serve this request. The administrators can find it in the logs by its request id.".to_owned(),
    }
}

/// A custom page, filled: every value escaped.
fn fill(template: &Template, kind: Kind, message: Option<&str>, frame: &Frame) -> String {
    let design = frame.design.cloned().unwrap_or_default();
    template.fill(|slot| match slot {
        Slot::Title => escape(kind.title()),
        Slot::Message => escape(&message.map_or_else(|| message_text(kind, frame), Into::into)),
        Slot::AppName => escape(frame.app.unwrap_or("")),
        Slot::UserEmail => escape(frame.email.unwrap_or("")),
        Slot::RequestId => escape(frame.request_id.unwrap_or("")),
        Slot::SignInUrl => escape(&frame.sign_in_url()),
        Slot::SignOutUrl => escape(&frame.sign_out_url()),
        Slot::SupportUrl => escape(design.support.as_ref().map_or("", |u| u.as_str())),
    })
}

/// The default page's HTML.
fn page_body(kind: Kind, message: Option<&str>, frame: &Frame, design: &LoginDesign) -> String {
    let title = escape(kind.title());
    let text = escape(&message.map_or_else(|| message_text(kind, frame), Into::into));
    let mut links = Vec::new();
    if kind.offers_sign_in() {
        let label = match (kind, frame.email) {
            (Kind::Denied, _) | (_, Some(_)) => "Sign in with another account",
            (Kind::SignedOut, None) => "Sign in again",
            _ => "Sign in",
        };
        links.push((frame.sign_in_url(), label));
    }
    if frame.session {
        links.push((frame.sign_out_url(), "Sign out"));
    }
    if let Some(support) = &design.support {
        links.push((support.to_string(), "Contact support"));
    }
    let items: String = links
        .iter()
        .map(|(href, label)| format!("<li><a href=\"{}\">{label}</a></li>", escape(href)))
        .collect();
    let next = if items.is_empty() {
        String::new()
    } else {
        format!("<nav aria-label=\"Next steps\"><ul>{items}</ul></nav>")
    };
    let account = match (kind, frame.email) {
        (Kind::Denied, _) | (_, None) => String::new(),
        (_, Some(email)) => format!("<p>Signed in as {}.</p>", escape(email)),
    };
    let main = format!(
        "<h1>{title}</h1><p id=\"message\">{text}</p>{account}{next}{}",
        request_id(frame)
    );
    document(&title, &main, design)
}

/// The request id, for support.
fn request_id(frame: &Frame) -> String {
    frame.request_id.map_or_else(String::new, |id| {
        format!(
            "<p class=\"ref\">Request ID: <code id=\"request-id\">{}</code></p>",
            escape(id)
        )
    })
}

/// A whole page around `main` (HTML) in `design`.
fn document(title: &str, main: &str, design: &LoginDesign) -> String {
    let (bg, fg) = (design.background.css(), design.text.css());
    let logo = design.logo.as_ref().map_or_else(String::new, |url| {
        format!(
            "<img src=\"{}\" alt=\"\" height=\"40\">",
            escape(url.as_str())
        )
    });
    let name = design.name.as_deref().map_or_else(String::new, |name| {
        format!("<p class=\"org\">{}</p>", escape(name))
    });
    let header_text = design
        .header_text
        .as_deref()
        .map_or_else(String::new, |t| format!("<p>{}</p>", escape(t)));
    let header = if logo.is_empty() && name.is_empty() && header_text.is_empty() {
        String::new()
    } else {
        format!("<header>{logo}{name}{header_text}</header>")
    };
    let footer = design.footer_text.as_deref().map_or_else(String::new, |t| {
        format!("<footer><p>{}</p></footer>", escape(t))
    });
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <style>html{{background:{bg}}}body{{font-family:system-ui,sans-serif;max-width:36rem;margin:10vh auto;padding:0 1rem;background:{bg};color:{fg}}}\
         h1{{font-size:1.4rem}}.org{{font-weight:600;font-size:1.1rem}}header img{{vertical-align:middle}}\
         ul{{list-style:none;padding:0}}li{{margin:.6rem 0}}\
         a{{display:block;padding:.8rem 1rem;border:1px solid {fg};border-radius:.4rem;color:{fg};text-decoration:underline}}\
         a:focus,a:focus-visible{{outline:3px solid {fg};outline-offset:3px}}code{{font-size:1rem}}\
         footer{{margin-top:3rem;font-size:.9rem}}</style></head>\
         <body>{header}<main>{main}</main>{footer}</body></html>"
    )
}

/// The login chooser: a link per identity provider, `(name, href)`.
pub fn chooser(providers: &[(String, String)], frame: &Frame) -> Response {
    let design = frame.design.cloned().unwrap_or_default();
    with_csp(
        respond(chooser_body(providers, frame, &design), 200),
        &design,
    )
}

/// The chooser's HTML.
fn chooser_body(providers: &[(String, String)], frame: &Frame, design: &LoginDesign) -> String {
    let title = match frame.app {
        Some(app) => format!("Sign in to {}", escape(app)),
        None => "Sign in".to_owned(),
    };
    let items: String = providers
        .iter()
        .map(|(name, href)| {
            format!(
                "<li><a href=\"{}\">Sign in with {}</a></li>",
                escape(href),
                escape(name)
            )
        })
        .collect();
    let support = design.support.as_ref().map_or_else(String::new, |url| {
        format!(
            "<p><a href=\"{}\">Contact support</a></p>",
            escape(url.as_str())
        )
    });
    let main = format!(
        "<h1 id=\"chooser-title\">{title}</h1><p id=\"chooser-hint\">Choose the organisation you sign in with.</p>\
         <nav aria-labelledby=\"chooser-hint\"><ul>{items}</ul></nav>{support}{}",
        request_id(frame)
    );
    document(&title, &main, design)
}

/// `response` with a `Content-Security-Policy` that runs no script and loads nothing but the
/// design's logo.
pub fn with_csp(response: Response, design: &LoginDesign) -> Response {
    let images = design
        .logo
        .as_ref()
        .map(|logo| logo.origin().ascii_serialization())
        .filter(|origin| origin.starts_with("https://"))
        .map_or_else(String::new, |origin| format!(" img-src {origin};"));
    with_header(
        response,
        "Content-Security-Policy",
        &format!(
            "default-src 'none'; style-src 'unsafe-inline';{images} base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        ),
    )
}

/// `text` as HTML text (also safe inside a quoted attribute).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn respond(body: String, status: u16) -> Response {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/html; charset=utf-8");
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body.into_bytes())
}

/// `response` with one more header.
pub fn with_header(response: Response, name: &str, value: &str) -> Response {
    let headers = response.headers().clone();
    let _ = headers.set(name, value);
    response.with_headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "Ask <b>IT</b> & say \"hi\" <script>alert('x')</script>";

    fn frame<'a>(design: &'a LoginDesign) -> Frame<'a> {
        Frame {
            design: Some(design),
            request_id: Some("8c1f<x>-LHR"),
            app: Some("Wiki <script>alert(1)</script>"),
            email: Some("ada\"><img src=x>@example.com"),
            session: true,
            return_to: Some("/staff?a=1&b=2"),
            ..Frame::default()
        }
    }

    fn no_markup(page: &str) {
        let lower = page.to_ascii_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img src=x") && !lower.contains("<b>"),
            "{page}"
        );
    }

    #[test]
    fn configured_text_cannot_add_markup() {
        let design = LoginDesign::default();
        let page = page_body(Kind::Denied, Some(HOSTILE), &frame(&design), &design);
        assert!(page.contains(
            "<p id=\"message\">Ask &lt;b&gt;IT&lt;/b&gt; &amp; say &quot;hi&quot; \
             &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
        ));
        no_markup(&page);
    }

    #[test]
    fn the_block_page_names_the_app_the_user_and_the_request_and_offers_next_steps() {
        let design = LoginDesign::parse(
            r#"{"name": "Example <Corp>", "support_url": "https://help.example.com/?q=a&b"}"#,
        )
        .unwrap();
        let page = page_body(Kind::Denied, None, &frame(&design), &design);
        assert!(page.contains(
            "You are signed in as ada&quot;&gt;&lt;img src=x&gt;@example.com, but you do not \
             have access to Wiki &lt;script&gt;alert(1)&lt;/script&gt; with this account."
        ));
        assert!(page.contains("<code id=\"request-id\">8c1f&lt;x&gt;-LHR</code>"));
        assert!(page.contains(
            "<a href=\"/cdn-cgi/access/login?redirect_url=%2Fstaff%3Fa%3D1%26b%3D2&amp;interactive=1\">\
             Sign in with another account</a>"
        ));
        assert!(page.contains("<a href=\"/cdn-cgi/access/logout\">Sign out</a>"));
        assert!(
            page.contains("<a href=\"https://help.example.com/?q=a&amp;b\">Contact support</a>")
        );
        assert!(page.contains("<p class=\"org\">Example &lt;Corp&gt;</p>"));
        assert!(page.contains("<html lang=\"en\">") && page.contains("<main>"));
        assert_eq!(page.matches("<h1").count(), 1);
        no_markup(&page);
    }

    #[test]
    fn a_refused_sign_in_without_a_session_offers_another_account_not_a_sign_out() {
        let design = LoginDesign::default();
        let mut frame = frame(&design);
        frame.session = false;
        let page = page_body(Kind::Denied, None, &frame, &design);
        assert!(page.contains("You are signed in as ada"), "{page}");
        assert!(page.contains("Sign in with another account</a>"), "{page}");
        assert!(
            !page.contains("Sign out") && !page.contains("/logout"),
            "{page}"
        );
    }

    #[test]
    fn links_follow_the_prefix_and_pages_without_a_user_offer_no_sign_out() {
        let endpoints = Endpoints::parse("/auth").unwrap();
        let frame = Frame {
            endpoints: Some(&endpoints),
            ..Frame::default()
        };
        let design = LoginDesign::default();
        let page = page_body(Kind::SignedOut, None, &frame, &design);
        assert!(
            page.contains("href=\"/auth/login?redirect_url=%2F&amp;interactive=1\">Sign in again")
        );
        assert!(!page.contains("Sign out"));
        let page = page_body(Kind::NotFound, None, &frame, &design);
        assert!(!page.contains("<a "), "{page}");
        assert!(!page.contains("request-id"));
    }

    #[test]
    fn the_design_s_colours_and_logo_reach_the_css_and_the_csp() {
        let design = LoginDesign::parse(
            r##"{"background_color": "#0b3d91", "text_color": "#fff",
                "logo_path": "https://cdn.example.com/l.png?a=1&b=\"x", "footer_text": "<i>IT</i>"}"##,
        )
        .unwrap();
        let page = page_body(Kind::Error, None, &Frame::default(), &design);
        assert!(page.contains("background:#0b3d91;color:#ffffff"));
        assert!(page.contains("<img src=\"https://cdn.example.com/l.png?a=1&amp;b=%22x\" alt=\"\""));
        assert!(page.contains("<footer><p>&lt;i&gt;IT&lt;/i&gt;</p></footer>"));
    }

    #[test]
    fn a_custom_page_is_filled_escaped() {
        let template = Template::parse(
            "<main><h1>{{ title }}</h1><p>{{app_name}} / {{user_email}} / {{request_id}}</p>\
             <a href=\"{{sign_in_url}}\">again</a><a href=\"{{sign_out_url}}\">out</a>{{message}}</main>",
        )
        .unwrap();
        let design = LoginDesign::default();
        let mut frame = frame(&design);
        frame.custom = Some(&template);
        let page = fill(&template, Kind::Denied, Some(HOSTILE), &frame);
        assert!(page.starts_with("<main><h1>Access denied</h1><p>Wiki &lt;script&gt;"));
        assert!(page.contains("/ 8c1f&lt;x&gt;-LHR</p>"));
        assert!(page.contains("href=\"/cdn-cgi/access/logout\""));
        assert!(page.contains("interactive=1\">again"));
        no_markup(&page);
    }

    #[test]
    fn the_chooser_escapes_every_configured_string_and_has_no_script() {
        let design = LoginDesign::default();
        let frame = Frame {
            app: Some("Wiki <script>alert(1)</script>"),
            request_id: Some("r1"),
            ..Frame::default()
        };
        let page = chooser_body(
            &[
                (
                    "Partner \"><img src=x onerror=alert(1)>".into(),
                    "/cdn-cgi/access/login?idp=a%22b&redirect_url=%2F".into(),
                ),
                (
                    "Entra ID".into(),
                    "/cdn-cgi/access/login?idp=entra&redirect_url=%2Fx".into(),
                ),
            ],
            &frame,
            &design,
        );
        assert!(
            page.contains("<title>Sign in to Wiki &lt;script&gt;alert(1)&lt;/script&gt;</title>")
        );
        assert!(page.contains(
            "<li><a href=\"/cdn-cgi/access/login?idp=a%22b&amp;redirect_url=%2F\">Sign in with \
             Partner &quot;&gt;&lt;img src=x onerror=alert(1)&gt;</a></li>"
        ));
        assert!(page.contains("<main>") && page.contains("<nav ") && page.contains("<h1 "));
        no_markup(&page);
        assert!(!page.to_ascii_lowercase().contains("javascript:"));
        let bare = chooser_body(&[], &Frame::default(), &design);
        assert_eq!(bare.matches("<title>Sign in</title>").count(), 1);
    }
}
