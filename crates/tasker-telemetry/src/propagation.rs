//! A span's place in its trace, to and from [`TraceParent`] — the W3C
//! `traceparent` form Tasker stores with a task and carries in every queue
//! message about it, so spans in another process (a worker in any
//! language, another orchestrator) join the trace the request started.
//!
//! Without OTLP export spans have no trace context: [`traceparent`] returns
//! `None` and [`continue_trace`] does nothing.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tasker_types::trace::TraceParent;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C header (and gRPC metadata key) that carries a caller's trace.
pub const HEADER: &str = "traceparent";

/// A caller's trace context from the raw value of its [`HEADER`]; `None`
/// when absent or malformed (a bad header never fails a request).
pub fn from_header(value: Option<&[u8]>) -> Option<TraceParent> {
    std::str::from_utf8(value?).ok()?.parse().ok()
}

/// `span`'s trace context, when it has one.
pub fn traceparent(span: &tracing::Span) -> Option<TraceParent> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return None;
    }
    TraceParent::new(
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
        sc.trace_flags().to_u8(),
    )
}

/// The current span's trace context.
pub fn current() -> Option<TraceParent> {
    traceparent(&tracing::Span::current())
}

/// Makes `span` a child of the remote span `parent` points at. Call it
/// right after creating `span`, before entering it; with no parent (or no
/// OTLP export) `span` keeps its place.
pub fn continue_trace(span: &tracing::Span, parent: Option<TraceParent>) {
    if let Some(cx) = parent.map(remote) {
        // Fails only when tracing is off or the span already started; the
        // span then simply starts a trace of its own.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(cx));
    }
}

/// Links `span` to the remote span `other` points at (for a span that
/// works for many traces at once, such as an orchestration batch).
pub fn link(span: &tracing::Span, other: Option<TraceParent>) {
    if let Some(cx) = other.map(remote) {
        span.add_link(cx);
    }
}

fn remote(tp: TraceParent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(tp.trace_id().to_be_bytes()),
        SpanId::from_bytes(tp.span_id().to_be_bytes()),
        TraceFlags::new(tp.flags()),
        true,
        TraceState::default(),
    )
}
