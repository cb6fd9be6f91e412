//! The gRPC adapters of the service traits (style.md R4): a client adapter that implements a
//! service trait by calling a remote role, and a server adapter that exposes a local service.
//!
//! What crosses every call, whatever the RPC:
//! - the caller's [`Principal`] in binary metadata (`apogee-principal-bin`), so no RPC can forget
//!   it, and the cluster token (`apogee-cluster-token`) that roles require of each other;
//! - W3C trace context (`traceparent`): a server continues the caller's trace, and calls it makes
//!   while serving carry the same trace id;
//! - a failure as a gRPC status whose `apogee-error-bin` metadata holds the [`ServiceError`]
//!   unchanged, so Rocket.Chat's `errorType`, message and details survive the hop.
//!
//! The client spreads calls over every address of the service (round robin, skipping an address
//! that just failed for a moment), gives each call a deadline, and retries only idempotent reads.
//! A service that cannot be reached is an `Unavailable` error (HTTP 503), never a hang.

pub mod auth;
pub mod files;
pub mod messaging;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_proto::common::v1::{JsonCall, JsonReply};
use apogee_types::{ErrorKind, Principal, ServiceError, ServiceResult, User};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::Instrument;

const PRINCIPAL: &str = "apogee-principal-bin";
const ERROR: &str = "apogee-error-bin";
const CLUSTER_TOKEN: &str = "apogee-cluster-token";
const TRACEPARENT: &str = "traceparent";
/// Listings (every user, a room's members) can be large; tonic's default is 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How long an address that failed is skipped before it is tried again.
const SKIP_FAILED_FOR: Duration = Duration::from_secs(2);

tokio::task_local! {
    /// The trace the current task serves, set by the server adapter around each call.
    static TRACE: TraceContext;
}

/// A W3C trace context: the trace id a request carries through every role it touches.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    /// The caller recorded this trace (the `traceparent` flag), so spans continuing it are too.
    pub sampled: bool,
}

impl TraceContext {
    fn random_hex(bytes: usize) -> String {
        (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
    }

    /// A new trace, for a call made outside any traced request.
    pub fn new_root() -> Self {
        Self { trace_id: Self::random_hex(16), span_id: Self::random_hex(8), sampled: true }
    }

    /// A child span of this trace.
    fn child(&self) -> Self {
        Self { trace_id: self.trace_id.clone(), span_id: Self::random_hex(8), sampled: self.sampled }
    }

    /// The trace the current task is serving, if any.
    pub fn current() -> Option<Self> {
        TRACE.try_with(Clone::clone).ok()
    }

    fn header(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }

    /// Parses a `traceparent` header (version 00; without flags, the trace counts as sampled).
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.split('-');
        let (version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let sampled = match parts.next() {
            None => true,
            Some(flags) if hex(flags, 2) => u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1),
            Some(_) => return None,
        };
        (version == "00" && hex(trace, 32) && hex(span, 16) && trace.bytes().any(|b| b != b'0'))
            .then(|| Self { trace_id: trace.to_owned(), span_id: span.to_owned(), sampled })
    }

    /// Runs `fut` as part of this trace, so the calls it makes carry it on.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        TRACE.scope(self, fut).await
    }
}

/// How the client treats a failed call of an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Idempotent reads: retried on another address when the service is unavailable.
    Read,
    /// Writes: sent once; a failure is reported, never repeated behind the caller's back.
    Write,
}

/// Options of a client of a remote service.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// The service's name in errors and logs (`auth`, `messaging`).
    pub service: &'static str,
    /// Deadline of each attempt (of a streamed call: to start it, and to answer once the
    /// uploaded body has ended).
    pub timeout: Duration,
    /// How long a streamed download may wait for the service's next chunk.
    pub stream_idle: Duration,
    /// Extra attempts of a read after an unavailable address.
    pub read_retries: u32,
    pub connect_timeout: Duration,
    /// Sent with every call; the server rejects calls without the token it expects.
    pub cluster_token: Option<String>,
}

impl RpcOptions {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            timeout: Duration::from_secs(10),
            stream_idle: Duration::from_secs(30),
            read_retries: 2,
            connect_timeout: Duration::from_secs(2),
            cluster_token: None,
        }
    }
}

pub(crate) struct Target {
    uri: String,
    channel: Channel,
    /// Milliseconds since the epoch before which this address is skipped.
    skip_until: AtomicU64,
}

/// Calls one service over gRPC, spread over every address it runs at.
#[derive(Clone)]
pub struct RpcClient {
    targets: Arc<[Target]>,
    next: Arc<AtomicUsize>,
    options: Arc<RpcOptions>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uris: Vec<&str> = self.targets.iter().map(|t| t.uri.as_str()).collect();
        f.debug_struct("RpcClient").field("service", &self.options.service).field("targets", &uris).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RpcClient {
    /// A client of the service at `addrs` (`http://host:port`, one per replica). Connections are
    /// made lazily and re-made after a failure, so a service may start after its callers.
    pub fn new(addrs: &[String], options: RpcOptions) -> Result<Self, String> {
        if addrs.is_empty() {
            return Err(format!("no address given for the {} service", options.service));
        }
        let mut targets = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let endpoint = Endpoint::from_shared(addr.clone())
                .map_err(|e| format!("bad {} address {addr}: {e}", options.service))?
                .connect_timeout(options.connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_timeout(Duration::from_secs(10));
            targets.push(Target {
                uri: addr.clone(),
                channel: endpoint.connect_lazy(),
                skip_until: AtomicU64::new(0),
            });
        }
        Ok(Self { targets: targets.into(), next: Arc::default(), options: Arc::new(options) })
    }

    /// The next address in turn that has not just failed (or the next one, if all have).
    pub(crate) fn pick(&self) -> &Target {
        let now = now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.targets.len();
        (0..n)
            .map(|i| &self.targets[(start + i) % n])
            .find(|t| t.skip_until.load(Ordering::Relaxed) <= now)
            .unwrap_or(&self.targets[start % n])
    }

    /// Asks each address of the service for its gRPC health: `Ok` when at least one replica is
    /// serving, else why none is.
    pub async fn health(&self) -> Result<(), String> {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
        let mut failures = Vec::new();
        for target in self.targets.iter() {
            let mut client = HealthClient::new(target.channel.clone());
            let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
            request.set_timeout(Duration::from_secs(2));
            match tokio::time::timeout(Duration::from_secs(2), client.check(request)).await {
                Ok(Ok(reply)) if reply.get_ref().status == ServingStatus::Serving as i32 => return Ok(()),
                Ok(Ok(_)) => failures.push(format!("{} is not serving", target.uri)),
                Ok(Err(status)) => failures.push(format!("{}: {}", target.uri, status.message())),
                Err(_) => failures.push(format!("{}: no answer", target.uri)),
            }
        }
        Err(failures.join("; "))
    }

    /// Calls `path` with `args` (a tuple of the trait method's arguments).
    pub async fn call<R: DeserializeOwned>(
        &self,
        path: &'static str,
        retry: Retry,
        who: Option<&Principal>,
        args: &impl Serialize,
    ) -> ServiceResult<R> {
        let reply: JsonReply = self.unary(path, retry, who, args).await?;
        serde_json::from_slice(&reply.result)
            .map_err(|e| ServiceError::internal(format!("decode {path} result: {e}")))
    }

    /// Calls a unary RPC whose request is `JsonCall` of `args` and whose reply is any message.
    pub(crate) async fn unary<M>(
        &self,
        path: &'static str,
        retry: Retry,
        who: Option<&Principal>,
        args: &impl Serialize,
    ) -> ServiceResult<M>
    where
        M: prost::Message + Default + Send + 'static,
    {
        let args = serde_json::to_vec(args)
            .map_err(|e| ServiceError::internal(format!("encode {path} arguments: {e}")))?;
        self.typed(path, retry, who, JsonCall { args }).await
    }

    /// Calls a unary RPC with typed protobuf messages both ways (`Messaging.SendMessage`).
    pub(crate) async fn typed<Req, M>(
        &self,
        path: &'static str,
        retry: Retry,
        who: Option<&Principal>,
        request: Req,
    ) -> ServiceResult<M>
    where
        Req: prost::Message + Clone + Default + Send + Sync + 'static,
        M: prost::Message + Default + Send + 'static,
    {
        let call = self.start(path, who)?;
        let span = call.span.clone();
        let outcome = self.attempts(path, retry, request, call).instrument(span.clone()).await;
        if outcome.is_err() {
            span.record("otel.status_code", "error");
        }
        outcome
    }

    async fn attempts<Req, M>(
        &self,
        path: &'static str,
        retry: Retry,
        mut message: Req,
        call: CallContext,
    ) -> ServiceResult<M>
    where
        Req: prost::Message + Clone + Default + Send + Sync + 'static,
        M: prost::Message + Default + Send + 'static,
    {
        let attempts = match retry {
            Retry::Read => 1 + self.options.read_retries,
            Retry::Write => 1,
        };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let target = self.pick();
            // The last attempt (a write's only one) sends the message itself, uncopied.
            let body = if attempt + 1 == attempts { std::mem::take(&mut message) } else { message.clone() };
            let mut request = tonic::Request::new(body);
            request.set_timeout(self.options.timeout);
            call.decorate(request.metadata_mut(), &self.options);
            let mut grpc = target.grpc();
            let outcome: Result<tonic::Response<M>, Status> =
                tokio::time::timeout(self.options.timeout, async {
                    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
                    grpc.unary(
                        request,
                        tonic::codegen::http::uri::PathAndQuery::from_static(path),
                        tonic_prost::ProstCodec::default(),
                    )
                    .await
                })
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded")));
            match outcome {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(status) => match self.failed(target, path, &status) {
                    Failure::Final(error) => return Err(error),
                    Failure::Retryable(error) => last = Some(error),
                },
            }
        }
        Err(last.unwrap_or_else(|| unavailable(self.options.service)))
    }

    /// What every attempt of one call carries: the encoded principal and a child span of the
    /// current trace (with exported traces, the call's client span, which the callee continues;
    /// otherwise the trace id still travels, from the served call this one is made for).
    pub(crate) fn start(&self, path: &'static str, who: Option<&Principal>) -> ServiceResult<CallContext> {
        let principal = match who {
            Some(p) => Some(
                serde_json::to_vec(p)
                    .map_err(|e| ServiceError::internal(format!("encode principal: {e}")))?,
            ),
            None => None,
        };
        let span = if apogee_telemetry::trace::enabled() {
            tracing::info_span!(
                "rpc.client",
                otel.name = path.trim_start_matches('/'),
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = self.options.service,
                otel.status_code = tracing::field::Empty
            )
        } else {
            tracing::Span::none()
        };
        let traceparent = apogee_telemetry::trace::traceparent_of(&span).unwrap_or_else(|| {
            TraceContext::current().map(|t| t.child()).unwrap_or_else(TraceContext::new_root).header()
        });
        Ok(CallContext { principal, traceparent, span })
    }

    pub(crate) fn options(&self) -> &RpcOptions {
        &self.options
    }

    /// Sorts out a failed attempt: an error the service itself answered (or any but
    /// unavailability) is final; an unreachable address is skipped for a moment and the call
    /// may be retried elsewhere.
    pub(crate) fn failed(&self, target: &Target, path: &str, status: &Status) -> Failure {
        let remote = status.metadata().get_bin(ERROR).is_some();
        let error = error_from_status(status, self.options.service);
        if error.kind != ErrorKind::Unavailable || remote {
            return Failure::Final(error);
        }
        tracing::warn!(service = self.options.service, target = %target.uri, rpc = path,
            code = ?status.code(), error = %status.message(), "service call failed");
        target.skip_until.store(now_ms() + SKIP_FAILED_FOR.as_millis() as u64, Ordering::Relaxed);
        Failure::Retryable(error)
    }
}

/// How an attempt failed.
pub(crate) enum Failure {
    Final(ServiceError),
    Retryable(ServiceError),
}

impl Failure {
    pub(crate) fn into_error(self) -> ServiceError {
        match self {
            Failure::Final(e) | Failure::Retryable(e) => e,
        }
    }
}

/// The metadata of one call, shared by its attempts.
pub(crate) struct CallContext {
    principal: Option<Vec<u8>>,
    traceparent: String,
    /// The client span (disabled unless traces are exported).
    pub(crate) span: tracing::Span,
}

impl CallContext {
    pub(crate) fn decorate(&self, meta: &mut MetadataMap, options: &RpcOptions) {
        if let Some(p) = &self.principal {
            meta.insert_bin(PRINCIPAL, BinaryMetadataValue::from_bytes(p));
        }
        if let Some(token) = &options.cluster_token
            && let Ok(v) = AsciiMetadataValue::try_from(token.as_str())
        {
            meta.insert(CLUSTER_TOKEN, v);
        }
        if let Ok(v) = AsciiMetadataValue::try_from(self.traceparent.as_str()) {
            meta.insert(TRACEPARENT, v);
        }
    }
}

impl Target {
    pub(crate) fn grpc(&self) -> tonic::client::Grpc<Channel> {
        tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

pub(crate) fn unavailable(service: &str) -> ServiceError {
    ServiceError::new(
        ErrorKind::Unavailable,
        "error-service-unavailable",
        format!("The {service} service is unavailable, try again later"),
    )
}

/// The gRPC status a service error travels as.
pub fn status_from_error(error: &ServiceError) -> Status {
    let code = match error.kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::TooManyRequests => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    };
    let mut meta = MetadataMap::new();
    if let Ok(bytes) = serde_json::to_vec(error) {
        meta.insert_bin(ERROR, BinaryMetadataValue::from_bytes(&bytes));
    }
    Status::with_metadata(code, error.message.clone(), meta)
}

/// The service error a status stands for: exactly the remote one when it sent one, else one
/// made from the status code (transport failures, deadlines).
pub fn error_from_status(status: &Status, service: &str) -> ServiceError {
    if let Some(bytes) = status.metadata().get_bin(ERROR).and_then(|v| v.to_bytes().ok())
        && let Ok(error) = serde_json::from_slice::<ServiceError>(&bytes)
    {
        return error;
    }
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => unavailable(service),
        Code::DeadlineExceeded => ServiceError::new(
            ErrorKind::Unavailable,
            "error-service-timeout",
            format!("The {service} service did not answer in time"),
        ),
        Code::Unauthenticated => ServiceError::new(
            ErrorKind::Internal,
            "error-cluster-auth",
            format!("The {service} service refused this role: {}", status.message()),
        ),
        _ => ServiceError::internal(format!("{service}: {} ({:?})", status.message(), status.code())),
    }
}

/// What a server adapter checks and extracts from every call.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// When set, calls must carry this token.
    pub cluster_token: Option<String>,
}

/// The caller's identity and trace, from a request's metadata.
pub struct CallMeta {
    pub principal: Option<Principal>,
    pub trace: TraceContext,
}

impl ServerOptions {
    /// Checks the cluster token and reads the principal and trace of a call.
    pub fn accept(&self, meta: &MetadataMap) -> Result<CallMeta, Status> {
        if let Some(expected) = &self.cluster_token {
            let given = meta.get(CLUSTER_TOKEN).map(|v| v.as_bytes()).unwrap_or_default();
            if !constant_time_eq(given, expected.as_bytes()) {
                return Err(Status::unauthenticated("missing or wrong cluster token"));
            }
        }
        let principal = match meta.get_bin(PRINCIPAL) {
            Some(v) => {
                let bytes = v.to_bytes().map_err(|_| Status::invalid_argument("bad principal metadata"))?;
                Some(serde_json::from_slice(&bytes).map_err(|_| Status::invalid_argument("bad principal"))?)
            }
            None => None,
        };
        let trace = meta
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)
            .unwrap_or_else(TraceContext::new_root);
        Ok(CallMeta { principal, trace })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes a call's arguments.
pub fn decode_args<T: DeserializeOwned>(call: &JsonCall) -> Result<T, Status> {
    serde_json::from_slice(&call.args).map_err(|e| Status::invalid_argument(format!("bad arguments: {e}")))
}

/// Encodes a service's answer as the RPC's reply.
pub fn reply<T: Serialize>(result: ServiceResult<T>) -> Result<tonic::Response<JsonReply>, Status> {
    match result {
        Ok(value) => serde_json::to_vec(&value)
            .map(|result| tonic::Response::new(JsonReply { result }))
            .map_err(|e| status_from_error(&ServiceError::internal(format!("encode result: {e}")))),
        Err(error) => Err(status_from_error(&error)),
    }
}

/// Runs one served call inside its span and trace.
pub async fn serve_call<T>(
    rpc: &'static str,
    trace: TraceContext,
    fut: impl std::future::Future<Output = ServiceResult<T>>,
) -> ServiceResult<T> {
    let span = if apogee_telemetry::trace::enabled() {
        // The span continues the caller's client span, so both processes share one trace.
        tracing::info_span!("rpc", rpc, trace_id = %trace.trace_id, otel.name = rpc, otel.kind = "server",
            otel.parent = trace.header(), rpc.system = "grpc")
    } else {
        tracing::info_span!("rpc", rpc, trace_id = %trace.trace_id)
    };
    trace.scope(fut).instrument(span).await
}

/// How an owned argument, decoded on the server, is handed to the trait method that takes it
/// by reference (`&str` from `String`, …) or by value (a clone).
pub trait Pass<'a, T> {
    fn pass(&'a self) -> T;
}

impl<'a> Pass<'a, &'a str> for String {
    fn pass(&'a self) -> &'a str {
        self
    }
}

impl<'a> Pass<'a, Option<&'a str>> for Option<String> {
    fn pass(&'a self) -> Option<&'a str> {
        self.as_deref()
    }
}

impl<'a> Pass<'a, &'a [String]> for Vec<String> {
    fn pass(&'a self) -> &'a [String] {
        self
    }
}

impl<'a> Pass<'a, &'a User> for User {
    fn pass(&'a self) -> &'a User {
        self
    }
}

impl<'a, T: Clone> Pass<'a, T> for T {
    fn pass(&'a self) -> T {
        self.clone()
    }
}

/// Writes both adapters of a service trait from one list of its RPCs: `who` RPCs take the
/// caller's principal first, `anon` ones do not. Each RPC is
/// `(Read|Write, RpcName, method, [arg: TraitType => OwnedType, ...], ResultType)`. The RPCs with
/// typed messages instead of the JSON envelope are written by hand, in `typed`: their client
/// and server methods.
macro_rules! grpc_adapters {
    (
        trait: $service:ident,
        name: $name:literal,
        path: $path:literal,
        client: $client:ident,
        server: $server:ident,
        server_trait: $server_trait:path,
        who: { $( ($wrw:ident, $wrpc:ident, $wmethod:ident, [$($warg:ident : $wty:ty => $wowned:ty),*], $wret:ty) ),* $(,)? }
        anon: { $( ($arw:ident, $arpc:ident, $amethod:ident, [$($aarg:ident : $aty:ty => $aowned:ty),*], $aret:ty) ),* $(,)? }
        $(typed: { client: { $($tclient:tt)* } server: { $($tserver:tt)* } })?
    ) => {
        /// Calls a remote service over gRPC.
        #[derive(Clone, Debug)]
        pub struct $client(pub $crate::grpc::RpcClient);

        #[async_trait::async_trait]
        impl $service for $client {
            $(
                async fn $wmethod(&self, who: &Principal, $($warg: $wty),*) -> ServiceResult<$wret> {
                    self.0.call(concat!($path, stringify!($wrpc)), $crate::grpc::Retry::$wrw, Some(who), &($($warg,)*)).await
                }
            )*
            $(
                async fn $amethod(&self, $($aarg: $aty),*) -> ServiceResult<$aret> {
                    self.0.call(concat!($path, stringify!($arpc)), $crate::grpc::Retry::$arw, None, &($($aarg,)*)).await
                }
            )*
            $($($tclient)*)?
        }

        /// Serves a local service over gRPC.
        pub struct $server {
            service: std::sync::Arc<dyn $service>,
            options: $crate::grpc::ServerOptions,
        }

        impl $server {
            pub fn new(service: std::sync::Arc<dyn $service>, options: $crate::grpc::ServerOptions) -> Self {
                Self { service, options }
            }
        }

        #[tonic::async_trait]
        impl $server_trait for $server {
            $(
                async fn $wmethod(
                    &self,
                    request: tonic::Request<apogee_proto::common::v1::JsonCall>,
                ) -> Result<tonic::Response<apogee_proto::common::v1::JsonReply>, tonic::Status> {
                    let meta = self.options.accept(request.metadata())?;
                    let who = meta.principal.ok_or_else(|| tonic::Status::unauthenticated("no principal"))?;
                    #[allow(unused_parens)]
                    let ($($warg,)*): ($($wowned,)*) = $crate::grpc::decode_args(request.get_ref())?;
                    let service = self.service.clone();
                    $crate::grpc::reply(
                        $crate::grpc::serve_call(concat!($name, ".", stringify!($wmethod)), meta.trace, async move {
                            service.$wmethod(&who, $(<$wowned as $crate::grpc::Pass<'_, $wty>>::pass(&$warg)),*).await
                        })
                        .await,
                    )
                }
            )*
            $(
                async fn $amethod(
                    &self,
                    request: tonic::Request<apogee_proto::common::v1::JsonCall>,
                ) -> Result<tonic::Response<apogee_proto::common::v1::JsonReply>, tonic::Status> {
                    let meta = self.options.accept(request.metadata())?;
                    #[allow(unused_parens)]
                    let ($($aarg,)*): ($($aowned,)*) = $crate::grpc::decode_args(request.get_ref())?;
                    let service = self.service.clone();
                    $crate::grpc::reply(
                        $crate::grpc::serve_call(concat!($name, ".", stringify!($amethod)), meta.trace, async move {
                            service.$amethod($(<$aowned as $crate::grpc::Pass<'_, $aty>>::pass(&$aarg)),*).await
                        })
                        .await,
                    )
                }
            )*
            $($($tserver)*)?
        }
    };
}

pub(crate) use grpc_adapters;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_error_kind_survives_the_status_round_trip() {
        let kinds = [
            ErrorKind::InvalidArgument,
            ErrorKind::Unauthenticated,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::TooManyRequests,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        for kind in kinds {
            let mut error =
                ServiceError::new(kind, "error-room-not-found", "The required \"roomId\" param [x]");
            error.details = Some(serde_json::json!({"method": "x", "n": 3}));
            error.bare_text = kind == ErrorKind::NotFound;
            let status = status_from_error(&error);
            assert_eq!(error_from_status(&status, "messaging"), error, "{kind:?}");
        }
    }

    #[test]
    fn a_transport_failure_is_unavailable() {
        let e = error_from_status(&Status::unavailable("tcp connect error"), "auth");
        assert_eq!((e.kind, e.error_type.as_str()), (ErrorKind::Unavailable, "error-service-unavailable"));
        assert_eq!(e.kind.http_status(), 503);
        let e = error_from_status(&Status::deadline_exceeded("late"), "auth");
        assert_eq!(e.error_type, "error-service-timeout");
    }

    #[test]
    fn traceparent_round_trip_and_rejects() {
        let t = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&t.header()), Some(t.clone()));
        let child = t.child();
        assert_eq!(child.trace_id, t.trace_id);
        assert_ne!(child.span_id, t.span_id);
        assert_eq!(TraceContext::parse("00-00000000000000000000000000000000-0000000000000001-01"), None);
        assert_eq!(TraceContext::parse("zz"), None);
    }

    #[test]
    fn cluster_token_is_required_when_set() {
        let options = ServerOptions { cluster_token: Some("s3cret".into()) };
        let mut meta = MetadataMap::new();
        assert_eq!(options.accept(&meta).err().map(|s| s.code()), Some(Code::Unauthenticated));
        meta.insert(CLUSTER_TOKEN, AsciiMetadataValue::from_static("wrong!"));
        assert!(options.accept(&meta).is_err());
        meta.insert(CLUSTER_TOKEN, AsciiMetadataValue::from_static("s3cret"));
        assert!(options.accept(&meta).is_ok());
    }
}
