//! A pass-through proxy in front of a real Orthanc that counts image renders.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// A pass-through proxy in front of a real Orthanc that counts image renders (in process).
pub struct CountingProxy {
    pub url: String,
    renders: Arc<AtomicUsize>,
    /// The path of every request, in order.
    paths: Arc<Mutex<Vec<String>>>,
    handle: ServerHandle,
}

impl CountingProxy {
    pub async fn start(target: &str) -> Self {
        let (proxy, server) = Self::bind(target);
        actix_web::rt::spawn(server);
        proxy
    }

    /// For tests without a runtime of their own (blocking clients): the proxy runs on its own
    /// thread until the test process ends.
    pub fn start_detached(target: &str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let target = target.to_owned();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (proxy, server) = Self::bind(&target);
                tx.send(proxy).unwrap();
                server.await
            })
        });
        rx.recv().unwrap()
    }

    fn bind(target: &str) -> (Self, actix_web::dev::Server) {
        let renders = Arc::new(AtomicUsize::new(0));
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (counter, seen, target) = (renders.clone(), paths.clone(), target.to_owned());
        let client = reqwest::Client::new();
        let server = HttpServer::new(move || {
            let (counter, seen, target, client) =
                (counter.clone(), seen.clone(), target.clone(), client.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (counter, seen, target, client) =
                    (counter.clone(), seen.clone(), target.clone(), client.clone());
                async move {
                    let path = req.uri().path();
                    seen.lock().unwrap().push(path.to_owned());
                    if path.ends_with("/preview") || path.ends_with("/rendered") {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
                    let mut fwd =
                        client.request(method, format!("{target}{}", req.uri())).body(body.to_vec());
                    for name in ["authorization", "accept", "accept-encoding", "content-type"] {
                        if let Some(v) = req.headers().get(name) {
                            fwd = fwd.header(name, v.as_bytes());
                        }
                    }
                    let resp = fwd.send().await.unwrap();
                    let mut out = HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(resp.status().as_u16()).unwrap(),
                    );
                    if let Some(ct) = resp.headers().get("content-type") {
                        out.insert_header(("content-type", ct.as_bytes()));
                    }
                    out.body(resp.bytes().await.unwrap())
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        (Self { url, renders, paths, handle }, server)
    }

    pub fn renders(&self) -> usize {
        self.renders.load(Ordering::SeqCst)
    }

    /// Requests for an image's pixels of `instance` (or of any instance, for `""`): renders,
    /// stored files and raw frames.
    pub fn image_fetches(&self, instance: &str) -> usize {
        let is_image =
            |p: &str| ["/preview", "/rendered", "/file", "/raw"].iter().any(|end| p.ends_with(end));
        self.paths.lock().unwrap().iter().filter(|p| p.contains(instance) && is_image(p)).count()
    }

    /// Requests whose path is `path`.
    pub fn requests_to(&self, path: &str) -> usize {
        self.paths.lock().unwrap().iter().filter(|p| *p == path).count()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
