//! The portal (issue 19) over HTTP: every page's status, the session cookie's attributes,
//! CSRF refusal, a read token without write buttons and refused when it posts anyway, the CSP,
//! and writes audited under the token's name, through the same rules as the API. The real
//! browser's check is scripts/browser-test.

use reqwest::{header, redirect::Policy, Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use zeroscale::config::AwsArgs;

use crate::common::reconcile::{env_at, Env};

const IC: &str = "demo-component";
const CSP: &str = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A browser: no redirects followed, cookies kept by hand (so a test sees every Set-Cookie).
struct Browser {
    http: Client,
    base: String,
    cookies: Vec<(String, String)>,
    /// Sent as `X-Forwarded-Proto` (a TLS-terminating proxy in front).
    proto: Option<&'static str>,
}

impl Browser {
    fn new(e: &Env) -> Self {
        Self {
            http: Client::builder().redirect(Policy::none()).build().unwrap(),
            base: e.app.url(""),
            cookies: Vec::new(),
            proto: None,
        }
    }

    fn keep(&mut self, r: &Response) {
        for v in r.headers().get_all(header::SET_COOKIE) {
            let text = v.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            r = r.header(header::COOKIE, c.join("; "));
        }
        if let Some(p) = self.proto {
            r = r.header("x-forwarded-proto", p);
        }
        if let Some(f) = form {
            r = r.form(f);
        }
        let resp = r.send().await.unwrap();
        self.keep(&resp);
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(Method::GET, path, None).await
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(Method::POST, path, Some(form)).await
    }

    /// Signs in with `token`; returns the session cookie's Set-Cookie line.
    async fn sign_in(&mut self, token: &str) -> String {
        let (status, _, page) = self.get("/ui/login").await;
        assert_eq!(status, 200);
        let csrf = hidden(&page, "csrf");
        let (status, headers, _) = self
            .post(
                "/ui/login",
                &[("token", token), ("csrf", &csrf), ("next", "/ui")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/ui");
        headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("zs_session="))
            .expect("a session cookie")
    }
}

/// The value of the first hidden input named `name`.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Waits for the operation a portal redirect names (`...&op=<id>`) to finish.
async fn finished(e: &Env, location: &str) {
    let op = location
        .rsplit_once("op=")
        .map(|(_, id)| id)
        .expect("an operation in the redirect");
    let done = e.wait(&format!("/operations/{op}")).await;
    assert_eq!(done["state"], "completed", "{done}");
}

async fn version(e: &Env) -> i64 {
    e.call(Method::GET, &format!("/components/{IC}"), None)
        .await
        .1["version"]
        .as_i64()
        .unwrap()
}

async fn enabled(e: &Env) {
    let op = e
        .converge(
            Method::POST,
            IC,
            Some(json!({"labels": {"team": "search"}})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
}

fn trusting_loopback() -> zeroscale::config::HttpArgs {
    zeroscale::config::HttpArgs {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_and_every_page_answers() {
    let e = env_at(AwsArgs::default().rate_limit, Some(trusting_loopback())).await;
    let mut b = Browser::new(&e);
    // Anonymous: pages redirect to the sign-in page, posts are refused.
    let (status, headers, _) = b.get("/ui").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/login?next=%2Fui");
    let (status, headers, page) = b.get("/ui/login").await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(
        page.contains("<label for=\"token\">"),
        "the token field has a label"
    );
    let (status, _, _) = b
        .post(&format!("/ui/components/{IC}/wake"), &[("csrf", "x")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The sign-in form's own CSRF token: a post without it (from another page) is refused.
    let token = e.token.clone();
    let mut other = Browser::new(&e);
    let (status, headers, page) = other
        .post("/ui/login", &[("token", &token), ("csrf", "forged")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(headers
        .get(header::SET_COOKIE)
        .is_none_or(|c| !c.to_str().unwrap().starts_with("zs_session")));
    // The form's cookie present but another token in the field (a forged page): refused too.
    let (_, headers, _) = other.get("/ui/login").await;
    let login_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for attr in [
        "zs_login=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui/login",
        "Max-Age=1800",
    ] {
        assert!(login_cookie.contains(attr), "{attr} in {login_cookie}");
    }
    let (status, _, page) = other
        .post("/ui/login", &[("token", &token), ("csrf", "0123")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!other.cookies.iter().any(|(k, _)| k == "zs_session"));
    // A browser's Fetch Metadata saying the post comes from another site: refused unread.
    let cross = Client::new()
        .post(e.app.url("/ui/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", token.as_str()), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(cross.headers().get(header::SET_COOKIE).is_none());
    // A wrong token: 401, the form again, no session (the refusal drew a fresh form).
    let csrf = hidden(&page, "csrf");
    let (status, _, page) = other
        .post("/ui/login", &[("token", "zs_nope_nope"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("unknown or revoked") && !page.contains("zs_nope_nope"),
        "{page}"
    );
    assert!(!other.cookies.iter().any(|(k, _)| k == "zs_session"));

    // Signing in: the cookie is HttpOnly, SameSite=Strict, scoped to /ui, with an expiry; not
    // Secure over plain HTTP.
    let cookie = b.sign_in(&token).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    // Behind a TLS-terminating proxy it trusts, the cookie is Secure.
    let mut tls = Browser::new(&e);
    tls.proto = Some("https");
    assert!(tls.sign_in(&token).await.contains("Secure"));

    // `next` stays on the portal: another origin, `//host` or `/\host` goes to /ui instead.
    for (next, to) in [
        (
            "/ui/components/demo-component?range=7d",
            "/ui/components/demo-component?range=7d",
        ),
        ("//evil.example/ui", "/ui"),
        ("https://evil.example/ui", "/ui"),
        ("/ui/\\evil.example", "/ui"),
        ("/docs", "/ui"),
    ] {
        let mut n = Browser::new(&e);
        let (_, _, page) = n.get("/ui/login").await;
        let csrf = hidden(&page, "csrf");
        let (status, headers, _) = n
            .post(
                "/ui/login",
                &[("token", &token), ("csrf", &csrf), ("next", next)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], to, "next={next}");
    }

    // Every page answers, with the CSP.
    enabled(&e).await;
    let variant = "/endpoints/demo-async-endpoint/variants/AllTraffic";
    let op = e
        .converge_at(Method::POST, &format!("{variant}/scale-to-zero"), None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    for (path, want) in [
        ("/ui", 200),
        ("/ui/?sort=-savings&kind=component&label=team%3Dsearch", 200),
        (&format!("/ui/components/{IC}") as &str, 200),
        (&format!("/ui/components/{IC}?range=7d"), 200),
        ("/ui/components/not-managed", 404),
        (&format!("/ui{variant}"), 200),
        ("/ui/endpoints/demo-endpoint/variants/AllTraffic", 404),
        ("/ui?state=sideways", 422),
        ("/ui?sort=color", 422),
        (&format!("/ui/components/{IC}?range=1y"), 422),
        ("/ui/components/bad_name!", 422),
    ] {
        let (status, headers, page) = b.get(path).await;
        assert_eq!(status.as_u16(), want, "{path}: {page}");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(
            !page.contains("sqlx") && !page.contains("Error {"),
            "{path}: no debug text"
        );
    }
    let (_, _, fleet) = b.get("/ui").await;
    assert!(fleet.contains("demo-component") && fleet.contains("team=search"));
    assert!(fleet.contains("Saved this month") && fleet.contains("class=\"spark\""));
    let (_, _, page) = b.get("/ui?state=sideways").await;
    assert!(
        page.contains("state") && page.contains("must be asleep"),
        "{page}"
    );
    for (asset, kind) in [
        ("/ui/assets/style.css", "text/css; charset=utf-8"),
        ("/ui/assets/app.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/icon.svg", "image/svg+xml"),
    ] {
        let (status, headers, _) = b.get(asset).await;
        assert_eq!(status, 200, "{asset}");
        assert_eq!(headers[header::CONTENT_TYPE], kind, "{asset}");
    }
    // A variant's page has the same controls, posted to its own path.
    let (_, _, page) = b.get(&format!("/ui{variant}")).await;
    assert!(
        page.contains("Instances") && page.contains(&format!("action=\"/ui{variant}/reconcile\"")),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let (status, headers, _) = b
        .post(&format!("/ui{variant}/reconcile"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with(&format!("/ui{variant}?done=reconcile&op=")));
    finished(&e, location).await;
    // An empty fleet (after a label filter that matches nothing) says what to do.
    let (_, _, empty) = b.get("/ui?label=team%3Dnobody").await;
    assert!(empty.contains("No target matches these filters"), "{empty}");

    // Swagger UI, served from the crate, with its own CSP; the OpenAPI document as before.
    let (status, headers, _) = b.get("/docs").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/docs/");
    let (status, headers, docs) = b.get("/docs/").await;
    assert_eq!(status, 200);
    assert!(
        docs.contains("swagger") && !docs.contains("https://"),
        "no other origin"
    );
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'; style-src 'self' 'sha256-"));
    let (_, _, init) = b.get("/docs/swagger-initializer.js").await;
    assert!(init.contains("/openapi.json"), "{init}");

    // Sign-out ends the session (CSRF-checked).
    let (_, _, page) = b.get("/ui").await;
    let csrf = hidden(&page, "csrf");
    let (status, _, _) = b.post("/ui/logout", &[("csrf", "wrong")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = b.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(b.get("/ui").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn writes_need_the_csrf_token_and_the_write_scope_and_are_audited_as_the_token() {
    let e = env_at(AwsArgs::default().rate_limit, None).await;
    enabled(&e).await;
    let wake = format!("/ui/components/{IC}/wake");
    let mut writer = Browser::new(&e);
    writer.sign_in(&e.token).await;
    let (_, _, page) = writer.get(&format!("/ui/components/{IC}")).await;
    assert!(
        page.contains("Wake now")
            && page.contains("Turn scale-to-zero off")
            && page.contains("Dry run")
    );
    let csrf = hidden(&page, "csrf");
    let before = version(&e).await;

    // Without the CSRF token, a made-up one, or another session's: 403, nothing changes.
    let reader_token = e.app.token("viewer", "read").await;
    let mut reader = Browser::new(&e);
    reader.sign_in(&reader_token).await;
    let (_, _, page) = reader.get("/ui").await;
    let readers_csrf = hidden(&page, "csrf");
    for bad in ["", "0000", readers_csrf.as_str()] {
        let (status, _, page) = writer.post(&wake, &[("csrf", bad), ("copies", "1")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(page.contains("CSRF"));
    }
    assert_eq!(version(&e).await, before, "a refused form changes nothing");

    // A read token: no write buttons, and 403 when it posts anyway (with its own CSRF token).
    let (status, _, page) = reader.get(&format!("/ui/components/{IC}")).await;
    assert_eq!(status, 200);
    let main = &page[page.find("<main").unwrap()..];
    assert!(
        !main.contains("method=\"post\""),
        "no write form for a read token"
    );
    assert!(!main.contains("Wake now") && page.contains("read-only"));
    let reader_csrf = hidden(&page, "csrf");
    for action in ["wake", "pause", "disable", "reconcile", "edit"] {
        let (status, _, page) = reader
            .post(
                &format!("/ui/components/{IC}/{action}"),
                &[("csrf", &reader_csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {page}");
        assert!(page.contains("lacks the &quot;write&quot; scope"), "{page}");
    }
    assert_eq!(version(&e).await, before);

    // Bad input: the API's rules, as a page with the field named; nothing changes.
    let (status, _, page) = writer
        .post(
            &wake,
            &[("csrf", &csrf), ("copies", "5000"), ("keep_warm_for", "1h")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("copies"), "{page}");
    let (status, _, _) = writer
        .post(&format!("/ui/components/{IC}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "disable needs its confirmation box"
    );
    let (status, _, page) = writer
        .post(
            &format!("/ui/components/{IC}/edit"),
            &[("csrf", &csrf), ("spec", "{\"max_capacity\": \"lots\"}")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("max_capacity"), "{page}");
    assert_eq!(version(&e).await, before);

    // The edit's dry run shows the AWS calls and writes nothing; confirming on a stale version
    // is refused (If-Match), on the current one it is a new version.
    let spec = json!({"max_capacity": 3, "labels": {"team": "search"}}).to_string();
    let v = before.to_string();
    let (status, _, page) = writer
        .post(
            &format!("/ui/components/{IC}/edit"),
            &[
                ("csrf", &csrf),
                ("spec", &spec),
                ("version", &v),
                ("intent", "dry_run"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Dry run: ok") && page.contains("RegisterScalableTarget"),
        "{page}"
    );
    assert_eq!(version(&e).await, before, "a dry run writes nothing");
    let stale = (before - 1).to_string();
    let (status, _, page) = writer
        .post(
            &format!("/ui/components/{IC}/edit"),
            &[
                ("csrf", &csrf),
                ("spec", &spec),
                ("version", &stale),
                ("intent", "dry_run"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "a dry run of a form drawn from an older version"
    );
    assert!(page.contains("changed since this form was drawn"), "{page}");
    let (status, _, _) = writer
        .post(
            &format!("/ui/components/{IC}/edit"),
            &[
                ("csrf", &csrf),
                ("spec", &spec),
                ("version", &stale),
                ("intent", "apply"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, headers, _) = writer
        .post(
            &format!("/ui/components/{IC}/edit"),
            &[
                ("csrf", &csrf),
                ("spec", &spec),
                ("version", &v),
                ("intent", "apply"),
                ("idem", "edit-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::LOCATION]
        .to_str()
        .unwrap()
        .starts_with(&format!("/ui/components/{IC}?done=edit&op=")));
    assert_eq!(version(&e).await, before + 1);
    finished(&e, headers[header::LOCATION].to_str().unwrap()).await;

    // A wake: accepted (303 to the page with its operation), audited under the token's name; a
    // double submit of the same form (same idem key) replays instead of acting twice.
    let form = [
        ("csrf", csrf.as_str()),
        ("copies", "1"),
        ("keep_warm_for", "30m"),
        ("idem", "wake-form-1"),
    ];
    let (status, headers, _) = writer.post(&wake, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("/ui/components/{IC}?done=wake&op=")),
        "{location}"
    );
    let after_wake = version(&e).await;
    let (status, _, _) = writer.post(&wake, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        version(&e).await,
        after_wake,
        "the same form twice is one wake"
    );
    let (_, page) = e
        .call(
            Method::GET,
            &format!("/audit?target={IC}&action=wake"),
            None,
        )
        .await;
    let items: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["actor"], "portal", "audited as the token's name");
    let (_, _, page) = writer.get(&location).await;
    assert!(page.contains("Wake queued"), "{page}");
    finished(&e, &location).await;

    // Revoking the token ends its sessions at once.
    zeroscale::store::tokens::revoke(&e.app.pool, "viewer")
        .await
        .unwrap();
    let (status, _, _) = reader.get("/ui").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
