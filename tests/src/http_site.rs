//! A tiny HTTP/1.1 site on 127.0.0.1 for tests in which the server fetches URLs (avatar URLs,
//! URL previews).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One path the site answers: its status, header lines (each ending in `\r\n`) and body.
pub struct Route {
    pub path: &'static str,
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

/// Serves `routes` (other paths: 404 `missing`) until the test ends; returns the site's base
/// URL and the number of requests it has answered.
pub async fn http_site(routes: Vec<Route>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let hits = Arc::new(AtomicUsize::new(0));
    let routes = Arc::new(routes);
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (routes, counter) = (routes.clone(), counter.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/");
                let (status, headers, body) = match routes.iter().find(|r| r.path == path) {
                    Some(r) => (r.status, r.headers.as_str(), r.body.as_slice()),
                    None => (404, "Content-Type: text/plain\r\n", b"missing".as_slice()),
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
            });
        }
    });
    (base, hits)
}
