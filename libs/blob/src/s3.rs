//! Blobs in an S3-compatible bucket. Requests are presigned by `rusty-s3` (no I/O of its own)
//! and sent with reqwest, so any endpoint works: AWS, MinIO, Ceph, moto, path-style or
//! virtual-host addressing.
//!
//! A put keeps at most one part ([`PART`]) in memory: a body that fits is one `PUT`, a larger
//! one a multipart upload of `PART`-sized parts, aborted if the body fails or passes the limit,
//! so nothing is stored then. S3 allows 10 000 parts, so one blob is at most ~80 GB.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::{Blob, BlobError, BlobResult, BlobStore, ByteStream, valid_key};

/// Size of a multipart part (S3's minimum is 5 MiB for every part but the last).
pub const PART: usize = 8 * 1024 * 1024;
/// Presigned requests are used at once; a short validity limits replay.
const SIGN_FOR: Duration = Duration::from_secs(600);

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The service endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// `(access key id, secret)`; `None` sends unsigned requests (a public bucket).
    pub credentials: Option<(String, String)>,
}

pub struct S3Blobs {
    bucket: Bucket,
    credentials: Option<Credentials>,
    http: reqwest::Client,
}

fn backend(e: impl std::fmt::Display) -> BlobError {
    BlobError::Backend(e.to_string())
}

async fn failed(what: &str, resp: reqwest::Response) -> BlobError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    BlobError::Backend(format!("{what}: {status}: {}", body.chars().take(300).collect::<String>()))
}

impl S3Blobs {
    pub fn new(cfg: &S3Config) -> BlobResult<Self> {
        let endpoint =
            cfg.endpoint.parse().map_err(|e| backend(format!("endpoint {}: {e}", cfg.endpoint)))?;
        let style = if cfg.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let region = if cfg.region.is_empty() { "us-east-1".to_owned() } else { cfg.region.clone() };
        let bucket = Bucket::new(endpoint, style, cfg.bucket.clone(), region).map_err(backend)?;
        Ok(Self {
            bucket,
            credentials: cfg.credentials.as_ref().map(|(k, s)| Credentials::new(k.clone(), s.clone())),
            http: reqwest::Client::new(),
        })
    }

    /// Creates the bucket if it does not exist (needs credentials allowed to).
    pub async fn ensure_bucket(&self) -> BlobResult<()> {
        let url = self.bucket.head_bucket(self.credentials.as_ref()).sign(SIGN_FOR);
        let resp = self.http.head(url).send().await.map_err(backend)?;
        if resp.status().is_success() {
            return Ok(());
        }
        let creds = self.credentials.as_ref().ok_or_else(|| backend("no bucket and no credentials"))?;
        let url = self.bucket.create_bucket(creds).sign(SIGN_FOR);
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .body(Bytes::new())
            .send()
            .await
            .map_err(backend)?;
        if resp.status().is_success() || resp.status() == StatusCode::CONFLICT {
            Ok(())
        } else {
            Err(failed("create bucket", resp).await)
        }
    }

    async fn put_single(&self, key: &str, body: Bytes) -> BlobResult<()> {
        let url = self.bucket.put_object(self.credentials.as_ref(), key).sign(SIGN_FOR);
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await
            .map_err(backend)?;
        if resp.status().is_success() { Ok(()) } else { Err(failed("put", resp).await) }
    }

    async fn create_multipart(&self, key: &str) -> BlobResult<String> {
        let url = self.bucket.create_multipart_upload(self.credentials.as_ref(), key).sign(SIGN_FOR);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .body(Bytes::new())
            .send()
            .await
            .map_err(backend)?;
        if !resp.status().is_success() {
            return Err(failed("create multipart upload", resp).await);
        }
        let text = resp.text().await.map_err(backend)?;
        let parsed = CreateMultipartUpload::parse_response(&text).map_err(backend)?;
        Ok(parsed.upload_id().to_owned())
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: u16, body: Bytes) -> BlobResult<String> {
        let url = self.bucket.upload_part(self.credentials.as_ref(), key, number, upload_id).sign(SIGN_FOR);
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await
            .map_err(backend)?;
        if !resp.status().is_success() {
            return Err(failed("upload part", resp).await);
        }
        resp.headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| backend("upload part: no ETag"))
    }

    async fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> BlobResult<()> {
        let action: CompleteMultipartUpload<'_, _> = self.bucket.complete_multipart_upload(
            self.credentials.as_ref(),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_FOR);
        let resp = self.http.post(url).body(action.body()).send().await.map_err(backend)?;
        if !resp.status().is_success() {
            return Err(failed("complete multipart upload", resp).await);
        }
        // S3 may answer 200 and report the failure in the body.
        let text = resp.text().await.map_err(backend)?;
        if text.contains("<Error>") {
            return Err(backend(format!("complete multipart upload: {text}")));
        }
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let url =
            self.bucket.abort_multipart_upload(self.credentials.as_ref(), key, upload_id).sign(SIGN_FOR);
        // Best effort: parts of an upload that fails to abort are not visible as an object,
        // and buckets usually expire them by a lifecycle rule.
        let _ = self.http.delete(url).send().await;
    }

    async fn put_multipart(
        &self,
        key: &str,
        upload_id: &str,
        mut buf: BytesMut,
        mut body: ByteStream,
        mut size: u64,
        limit: u64,
    ) -> BlobResult<u64> {
        let mut etags = Vec::new();
        loop {
            while buf.len() >= PART {
                let part = buf.split_to(PART).freeze();
                let number = u16::try_from(etags.len() + 1).map_err(|_| backend("more than 10 000 parts"))?;
                etags.push(self.upload_part(key, upload_id, number, part).await?);
            }
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(BlobError::TooLarge { limit });
                    }
                    buf.extend_from_slice(&chunk);
                }
                None => break,
            }
        }
        if !buf.is_empty() {
            let number = u16::try_from(etags.len() + 1).map_err(|_| backend("more than 10 000 parts"))?;
            etags.push(self.upload_part(key, upload_id, number, buf.freeze()).await?);
        }
        self.complete(key, upload_id, &etags).await?;
        Ok(size)
    }
}

fn parse_total(content_range: Option<&reqwest::header::HeaderValue>) -> Option<u64> {
    content_range?.to_str().ok()?.rsplit_once('/')?.1.trim().parse().ok()
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, mut body: ByteStream, limit: u64) -> BlobResult<u64> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        let mut buf = BytesMut::new();
        let mut size = 0u64;
        // Read up to one part: a small body is a single PUT.
        while buf.len() < PART {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(BlobError::TooLarge { limit });
                    }
                    buf.extend_from_slice(&chunk);
                }
                None => {
                    self.put_single(key, buf.freeze()).await?;
                    return Ok(size);
                }
            }
        }
        let upload_id = self.create_multipart(key).await?;
        let result = self.put_multipart(key, &upload_id, buf, body, size, limit).await;
        if result.is_err() {
            self.abort(key, &upload_id).await;
        }
        result
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> BlobResult<Blob> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        let url = self.bucket.get_object(self.credentials.as_ref(), key).sign(SIGN_FOR);
        let mut req = self.http.get(url);
        if let Some(r) = &range {
            if r.end <= r.start {
                let size = self.head(key).await?.ok_or(BlobError::NotFound)?;
                return Ok(Blob { body: crate::once(Bytes::new()), len: 0, size });
            }
            req = req.header(reqwest::header::RANGE, format!("bytes={}-{}", r.start, r.end - 1));
        }
        let resp = req.send().await.map_err(backend)?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(BlobError::NotFound);
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            let size = self.head(key).await?.ok_or(BlobError::NotFound)?;
            return Ok(Blob { body: crate::once(Bytes::new()), len: 0, size });
        }
        if !status.is_success() {
            return Err(failed("get", resp).await);
        }
        let len = resp.content_length().ok_or_else(|| backend("get: no Content-Length"))?;
        let size = if status == StatusCode::PARTIAL_CONTENT {
            parse_total(resp.headers().get(reqwest::header::CONTENT_RANGE))
                .ok_or_else(|| backend("get: no Content-Range"))?
        } else {
            len
        };
        let (len, body): (u64, ByteStream) = match range {
            // A server that ignores Range sends everything: skip to the range ourselves.
            Some(r) if status == StatusCode::OK => {
                let start = r.start.min(size);
                let end = r.end.min(size).max(start);
                let stream = resp.bytes_stream().map_err(std::io::Error::other);
                (end - start, Box::pin(slice_stream(stream, start, end)))
            }
            _ => (len, Box::pin(resp.bytes_stream().map_err(std::io::Error::other))),
        };
        Ok(Blob { body, len, size })
    }

    async fn head(&self, key: &str) -> BlobResult<Option<u64>> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        let url = self.bucket.head_object(self.credentials.as_ref(), key).sign(SIGN_FOR);
        let resp = self.http.head(url).send().await.map_err(backend)?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| backend("head: no Content-Length"))?,
            )),
            _ => Err(failed("head", resp).await),
        }
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        let url = self.bucket.delete_object(self.credentials.as_ref(), key).sign(SIGN_FOR);
        let resp = self.http.delete(url).send().await.map_err(backend)?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(failed("delete", resp).await)
        }
    }
}

/// The bytes `start..end` of a stream.
fn slice_stream(
    stream: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let mut at = 0u64;
    stream.filter_map(move |chunk| {
        let out = chunk.map(|mut bytes| {
            let (from, to) = (at, at + bytes.len() as u64);
            at = to;
            if to <= start || from >= end {
                return None;
            }
            let lo = usize::try_from(start.saturating_sub(from)).unwrap_or(0);
            let hi = usize::try_from(end.min(to) - from).unwrap_or(bytes.len());
            bytes.truncate(hi);
            Some(bytes.split_off(lo))
        });
        std::future::ready(out.transpose())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(path_style: bool) -> S3Config {
        S3Config {
            endpoint: "https://s3.example.com".into(),
            bucket: "files".into(),
            region: String::new(),
            path_style,
            credentials: Some(("k".into(), "s".into())),
        }
    }

    #[test]
    fn addressing_styles() {
        let path = S3Blobs::new(&cfg(true)).unwrap();
        assert_eq!(path.bucket.base_url().as_str(), "https://s3.example.com/files/");
        let vhost = S3Blobs::new(&cfg(false)).unwrap();
        assert_eq!(vhost.bucket.base_url().as_str(), "https://files.s3.example.com/");
        assert_eq!(vhost.bucket.region(), "us-east-1");
        let url = vhost.bucket.get_object(vhost.credentials.as_ref(), "a/b").sign(SIGN_FOR);
        assert!(url.as_str().starts_with("https://files.s3.example.com/a/b?"), "{url}");
        assert!(url.query().unwrap().contains("X-Amz-Signature="));
    }

    #[tokio::test]
    async fn slices_cross_chunks() {
        let chunks =
            futures_util::stream::iter([&b"0123"[..], b"4567", b"89"].map(|c| Ok(Bytes::from_static(c))));
        let out: Vec<Bytes> = slice_stream(chunks, 3, 9).try_collect().await.unwrap();
        assert_eq!(out.concat(), b"345678");
    }
}
