//! A canned HTTP server: a fake delegated-auth validator or JWKS endpoint that counts calls and keeps headers.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// What a `Canned` server answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    /// When set, `status` only for requests whose header (lowercase name) has this value, 403
    /// otherwise: a validator that decides by what it is told.
    pub only_if: Option<(String, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self { status, headers: vec![], body: String::new(), delay: Duration::ZERO, only_if: None }
    }

    pub fn only_if(mut self, header: &str, value: &str) -> Self {
        self.only_if = Some((header.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
}

struct CannedState {
    answer: Mutex<Answer>,
    calls: AtomicUsize,
    seen: Mutex<Vec<HashMap<String, String>>>,
}

/// A tiny HTTP server answering every GET with a settable canned answer, counting calls and
/// keeping the headers it saw: a fake auth validator, a fake JWKS endpoint.
pub struct Canned {
    pub url: String,
    state: Arc<CannedState>,
    handle: ServerHandle,
}

impl Canned {
    pub async fn start(answer: Answer) -> Self {
        let state = Arc::new(CannedState {
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(vec![]),
        });
        let data = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(canned)))
                .workers(2)
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, state, handle }
    }

    pub fn set(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Request headers (lowercase names) of every call so far.
    pub fn seen(&self) -> Vec<HashMap<String, String>> {
        self.state.seen.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn canned(req: HttpRequest, state: web::Data<CannedState>) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    state.seen.lock().unwrap().push(
        req.headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
    );
    let a = state.answer.lock().unwrap().clone();
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    let status = match &a.only_if {
        Some((h, v)) if req.headers().get(h.as_str()).and_then(|x| x.to_str().ok()) != Some(v.as_str()) => {
            403
        }
        _ => a.status,
    };
    let mut resp = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (k, v) in &a.headers {
        resp.insert_header((k.as_str(), v.as_str()));
    }
    resp.body(a.body)
}
