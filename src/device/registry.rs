//! One open device per adapter and feature set in the process (and one wgpu instance per backend
//! set), and the sink of uncaptured wgpu errors kept per thread so that threads sharing that
//! device each hear only their own.
//!
//! Why share: several devices opened on one NVIDIA GPU (Vulkan) and used from parallel threads of
//! one process hung intermittently in the driver on an H200 (20 of 58 test runs; 0 of 24 with one
//! device shared), so `Device::new`, `Device::all` and `Device::from_adapter` hand out clones of
//! one device per adapter instead of opening another.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::ThreadId;

use super::Device;
use crate::error::Result;

/// What tells two open devices apart: the adapter (its `AdapterInfo`, which carries the PCI bus
/// id where the backend reports one), which of several indistinguishable adapters it is (their
/// order in one enumeration), and the features requested.
#[derive(PartialEq, Eq)]
struct Key {
    info: wgpu::AdapterInfo,
    ordinal: usize,
    features: wgpu::Features,
}

/// The devices opened so far. A handful at most, so a list; devices stay open for the process's
/// life (their pipeline caches with them) unless lost.
static OPEN: Mutex<Vec<(Key, Device)>> = Mutex::new(Vec::new());

/// The instances made so far, by backend set: one per set for the process, so looking adapters
/// up again (every `Device::new`) neither creates nor destroys a driver instance beside the open
/// devices.
static INSTANCES: Mutex<Vec<(wgpu::Backends, wgpu::Instance)>> = Mutex::new(Vec::new());

/// The process's instance for `backends`.
pub(super) fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut made = INSTANCES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, i)) = made.iter().find(|(b, _)| *b == backends) {
        return i.clone();
    }
    let i = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
    });
    made.push((backends, i.clone()));
    i
}

/// The adapters found so far, by backend set: each set is enumerated once for the process, under
/// the lock, so threads opening devices at once (a test binary's) never enumerate side by side
/// or while others run kernels. `tests/device.rs`, whose parallel tests each enumerated, died in
/// the NVIDIA driver (signal 11) in 3 of 167 runs on an H200, and in none of 167 after this.
static ADAPTERS: Mutex<Vec<(wgpu::Backends, Vec<wgpu::Adapter>)>> = Mutex::new(Vec::new());

/// The adapters of `backends`, in the order the instance enumerated them.
pub(super) fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut found = ADAPTERS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, list)) = found.iter().find(|(b, _)| *b == backends) {
        return list.clone();
    }
    let list = pollster::block_on(instance(backends).enumerate_adapters(backends));
    found.push((backends, list.clone()));
    list
}

/// The device open on `adapter` with `features`, opening it if there is none or the one there
/// was lost. `ordinal`: how many adapters with the same `AdapterInfo` came before it in the
/// enumeration it came from (0 when unknown).
pub(super) fn shared(
    adapter: wgpu::Adapter,
    features: wgpu::Features,
    ordinal: usize,
) -> Result<Device> {
    let key = Key {
        info: adapter.get_info(),
        ordinal,
        features,
    };
    // Held while opening, so threads asking at once for the same adapter get one device; a
    // panic elsewhere while it was held leaves the list itself valid, hence no poison check.
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = open.iter().position(|(k, _)| *k == key);
    if let Some(i) = slot
        && !open[i].1.is_lost()
    {
        return Ok(open[i].1.clone());
    }
    let device = Device::open(adapter, features)?;
    match slot {
        Some(i) => open[i].1 = device.clone(),
        None => open.push((key, device.clone())),
    }
    Ok(device)
}

/// Errors that no error scope caught, by the thread that raised them. wgpu raises an error on
/// the thread whose call caused it, and its error scopes are per thread too, so each thread
/// takes its own: a thread never reports another's error (failing for it, and hiding it from
/// the thread that caused it). Errors left by a thread that ended without taking them go to the
/// next thread that takes, rather than nowhere.
#[derive(Default)]
pub(crate) struct Uncaptured(Mutex<Pending>);

#[derive(Default)]
struct Pending {
    by_thread: HashMap<ThreadId, Vec<String>>,
    orphaned: Vec<String>,
}

impl Uncaptured {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Plain pushes and takes: a panic while held cannot leave it half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `error` for the calling thread (the one whose wgpu call raised it).
    pub(crate) fn push(self: &Arc<Self>, error: String) {
        let thread = THREAD.try_with(|t| {
            t.watch(self);
            t.id
        });
        let mut pending = self.pending();
        match thread {
            Ok(id) => pending.by_thread.entry(id).or_default().push(error),
            // The thread is ending: no later take on it would see the error.
            Err(_) => pending.orphaned.push(error),
        }
    }

    /// The calling thread's errors and any orphaned ones, oldest first; clears them.
    pub(crate) fn take(&self) -> Vec<String> {
        let id = THREAD.try_with(|t| t.id).ok();
        let mut pending = self.pending();
        let mut out = std::mem::take(&mut pending.orphaned);
        if let Some(mine) = id.and_then(|id| pending.by_thread.remove(&id)) {
            out.extend(mine);
        }
        out
    }

    /// Hands the errors `thread` left untaken to whoever takes next.
    fn orphan(&self, thread: ThreadId) {
        let mut pending = self.pending();
        if let Some(left) = pending.by_thread.remove(&thread) {
            pending.orphaned.extend(left);
        }
    }
}

/// Per thread: its id, and the sinks holding its errors, to orphan them when the thread ends.
struct ThreadSinks {
    id: ThreadId,
    sinks: RefCell<Vec<Weak<Uncaptured>>>,
}

impl ThreadSinks {
    fn watch(&self, sink: &Arc<Uncaptured>) {
        let Ok(mut sinks) = self.sinks.try_borrow_mut() else {
            return;
        };
        let weak = Arc::downgrade(sink);
        sinks.retain(|s| s.strong_count() > 0);
        if !sinks.iter().any(|s| s.ptr_eq(&weak)) {
            sinks.push(weak);
        }
    }
}

impl Drop for ThreadSinks {
    fn drop(&mut self) {
        for sink in self.sinks.get_mut().drain(..) {
            if let Some(sink) = sink.upgrade() {
                sink.orphan(self.id);
            }
        }
    }
}

thread_local! {
    static THREAD: ThreadSinks = ThreadSinks {
        id: std::thread::current().id(),
        sinks: RefCell::new(Vec::new()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_takes_only_its_own_errors() {
        let sink = Arc::new(Uncaptured::default());
        sink.push("main's".into());
        let other = sink.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                other.push("worker's".into());
                assert_eq!(other.take(), vec!["worker's".to_string()]);
                assert!(other.take().is_empty(), "taking clears");
            });
        });
        assert_eq!(sink.take(), vec!["main's".to_string()]);
        assert!(sink.take().is_empty());
    }

    #[test]
    fn errors_of_an_ended_thread_go_to_the_next_taker() {
        let sink = Arc::new(Uncaptured::default());
        let other = sink.clone();
        std::thread::spawn(move || other.push("left behind".into()))
            .join()
            .unwrap();
        sink.push("mine".into());
        assert_eq!(
            sink.take(),
            vec!["left behind".to_string(), "mine".to_string()]
        );
        assert!(sink.take().is_empty());
    }
}
