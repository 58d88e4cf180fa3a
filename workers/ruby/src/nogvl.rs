//! Running Rust without the GVL, so other Ruby threads run while the core
//! waits. magnus has no wrapper for `rb_thread_call_without_gvl2`; this is
//! the one module allowed `unsafe`.
//!
//! Ruby may want a waiting thread back — a signal for the main thread, or
//! `Thread#raise`/`#kill` — and says so by calling the *unblocking function*
//! from another thread: it cancels a token the closure waits on, so the
//! closure returns early. `rb_thread_call_without_gvl2` (unlike the variant
//! without the 2) does not act on pending interrupts itself, so no Ruby
//! exception ever unwinds through these Rust frames: [`check_interrupts`]
//! runs them afterwards, inside `protect`, as an ordinary `Error`.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use magnus::{Error, Ruby};
use tokio_util::sync::CancellationToken;

struct Call<F, R> {
    f: Option<F>,
    interrupt: CancellationToken,
    result: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn run<F, R>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce(&CancellationToken) -> R,
{
    // SAFETY: `data` is the `Call<F, R>` that `without_gvl` lends for the
    // duration of this call, on this thread; nothing else touches it.
    let call = unsafe { &mut *data.cast::<Call<F, R>>() };
    if let Some(f) = call.f.take() {
        let interrupt = call.interrupt.clone();
        // A panic must not unwind into Ruby's C frames: keep it, resume it
        // (as an Error) once back on the Ruby side.
        call.result = Some(catch_unwind(AssertUnwindSafe(|| f(&interrupt))));
    }
    std::ptr::null_mut()
}

unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the token `without_gvl` keeps alive until the
    // blocking region ends, and Ruby calls this only within that region.
    let interrupt = unsafe { &*data.cast::<CancellationToken>() };
    interrupt.cancel();
}

/// Runs `f` with the GVL released. `f` gets a token Ruby cancels when it
/// wants the thread back; it should then return soon. `None` when Ruby did
/// not run `f` at all (an interrupt was already pending).
///
/// # Errors
/// A panic in `f`, as a Ruby `RuntimeError` (a bug: say so loudly).
pub(crate) fn without_gvl<F, R>(ruby: &Ruby, f: F) -> Result<Option<R>, Error>
where
    F: FnOnce(&CancellationToken) -> R,
{
    let mut call = Call {
        f: Some(f),
        interrupt: CancellationToken::new(),
        result: None,
    };
    release_once(&mut call);
    finish(ruby, call.result)
}

/// Like [`without_gvl`] for work that must run once it is asked for
/// (starting a worker, saving a checkpoint): when Ruby declines to release
/// the GVL because an interrupt is pending — often one that raises nothing,
/// such as a timer or a thread switch — the interrupt is handled and the
/// call made again; an interrupt that raises ends it with that exception.
///
/// # Errors
/// The exception a pending interrupt raised, or a panic in `f`.
pub(crate) fn without_gvl_until_run<F, R>(ruby: &Ruby, f: F) -> Result<R, Error>
where
    F: FnOnce(&CancellationToken) -> R,
{
    let mut call = Call {
        f: Some(f),
        interrupt: CancellationToken::new(),
        result: None,
    };
    loop {
        release_once(&mut call);
        if let Some(value) = finish(ruby, call.result.take())? {
            return Ok(value);
        }
        check_interrupts()?;
    }
}

/// One `rb_thread_call_without_gvl2`: runs `call.f` unless an interrupt is
/// pending, leaving `call.f` in place for a retry in that case.
fn release_once<F, R>(call: &mut Call<F, R>)
where
    F: FnOnce(&CancellationToken) -> R,
{
    let interrupt = call.interrupt.clone();
    // SAFETY: both pointers outlive the call: `call` is borrowed and
    // `interrupt` lives on this frame until it returns, and Ruby calls
    // `unblock` only while `run` may still be running.
    unsafe {
        rb_sys::rb_thread_call_without_gvl2(
            Some(run::<F, R>),
            std::ptr::from_mut(call).cast::<c_void>(),
            Some(unblock),
            (&raw const interrupt).cast_mut().cast::<c_void>(),
        );
    }
}

fn finish<R>(ruby: &Ruby, result: Option<std::thread::Result<R>>) -> Result<Option<R>, Error> {
    match result {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(panic)) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            Err(Error::new(
                ruby.exception_runtime_error(),
                format!("the Tasker worker core panicked: {text}"),
            ))
        }
    }
}

/// Lets Ruby act on interrupts that arrived while the GVL was released:
/// signal traps run here, and a pending `Thread#raise` or `Interrupt`
/// becomes the returned error.
///
/// # Errors
/// The exception an interrupt raised.
pub(crate) fn check_interrupts() -> Result<(), Error> {
    magnus::rb_sys::protect(|| {
        // SAFETY: called on a Ruby thread holding the GVL (a method call);
        // `protect` turns any raise into an `Err`.
        unsafe { rb_sys::rb_thread_check_ints() };
        rb_sys::Qnil as rb_sys::VALUE
    })
    .map(|_| ())
}
