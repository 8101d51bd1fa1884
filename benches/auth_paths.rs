//! What each credential costs per request: `Authenticator::authenticate` + `authorize` on one
//! instance, for an API key, a session token in a cookie (unscoped, and scoped to a study: the
//! instance→series→study parents come from the cache), and a delegated session whose decision is
//! cached. A tiny fake Orthanc/validator answers the first lookups; measured calls make none.
//!
//! `cargo bench --bench auth_paths` (add `-- --quick` for a fast smoke run).

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;

use actix_web::{test::TestRequest, web, App, HttpRequest, HttpResponse, HttpServer};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orthanc_edge::auth::{hash_key, Authenticator, Resource, Scope};
use orthanc_edge::config::Config;
use orthanc_edge::http::client_addr;
use orthanc_edge::ids::OrthancId;
use orthanc_edge::upstream::OrthancClient;

const INSTANCE: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
const SERIES: &str = "11111111-22222222-33333333-44444444-55555555";
const STUDY: &str = "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee";
const API_KEY: &str = "bench-key-0123456789";
const SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123";

async fn fake(req: HttpRequest) -> HttpResponse {
    match req.path() {
        p if p.starts_with("/instances/") => {
            HttpResponse::Ok().json(serde_json::json!({ "ParentSeries": SERIES }))
        }
        p if p.starts_with("/series/") => {
            HttpResponse::Ok().json(serde_json::json!({ "ParentStudy": STUDY }))
        }
        // The top of a delegated decision's description (instance → series → study).
        p if p.starts_with("/studies/") => HttpResponse::Ok().json(serde_json::json!({ "ID": STUDY })),
        _ => HttpResponse::NoContent().insert_header(("X-Edge-Allowed-Studies", STUDY)).finish(),
    }
}

/// Fake Orthanc + validator on its own thread; returns its base URL.
fn start_fake() -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            tx.send(format!("http://{}", listener.local_addr().expect("addr"))).expect("send");
            HttpServer::new(|| App::new().default_service(web::to(fake)))
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run()
                .await
                .expect("fake server");
        })
    });
    rx.recv().expect("fake url")
}

fn config(fake: &str) -> Config {
    let toml = format!(
        "[orthanc]\nurl = \"{fake}\"\npassword = \"x\"\n\
         [[auth.api_keys]]\nname = \"bench\"\nhash = \"{}\"\nscopes = [\"preview\"]\n\
         [auth.jwt]\nsecret = \"{SECRET}\"\n\
         [auth.delegate]\nurl = \"{fake}/check\"\nforward_headers = [\"Cookie\"]\n",
        hash_key(API_KEY)
    );
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp");
    f.write_all(toml.as_bytes()).expect("write");
    Config::load_from(Some(f.path()), HashMap::new()).expect("config")
}

fn token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

fn bench_auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let fake = start_fake();
    let cfg = config(&fake);
    let password = cfg.orthanc_password().expect("password");
    let upstream = OrthancClient::new(&cfg.orthanc, &password).expect("client");
    let auth = Authenticator::from_config(&cfg, upstream).expect("authenticator");
    let id = OrthancId::parse(INSTANCE).expect("id");
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let request = |name: &str, value: String| {
        TestRequest::with_uri(&format!("/instances/{INSTANCE}/preview"))
            .peer_addr("127.0.0.1:40000".parse().expect("addr"))
            .insert_header((name.to_owned(), value))
            .to_http_request()
    };
    let cases = [
        ("api_key", request("X-Api-Key", API_KEY.to_owned())),
        (
            "jwt_cookie",
            request(
                "Cookie",
                format!("orthanc_edge_session={}", token(serde_json::json!({"sub": "u", "exp": exp}))),
            ),
        ),
        (
            "jwt_cookie_study_scope",
            request(
                "Cookie",
                format!(
                    "orthanc_edge_session={}",
                    token(serde_json::json!({"sub": "u", "exp": exp, "studies": [STUDY]}))
                ),
            ),
        ),
        ("delegated_cached", request("Cookie", "sessionid=bench-session".to_owned())),
    ];
    let mut group = c.benchmark_group("authenticate+authorize");
    for (name, req) in &cases {
        let check = || async {
            let p = auth.authenticate(req, client_addr(req)).await.expect("authenticated");
            auth.authorize(&p, Scope::Preview, Resource::Instance(&id)).await.expect("authorized");
        };
        // First call warms the parents and the validator's decision.
        rt.block_on(check());
        group.bench_function(*name, |b| b.iter(|| rt.block_on(check())));
    }
    group.finish();
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
