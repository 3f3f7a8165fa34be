//! The wasmtime engine configuration and the epoch ticker that gives every call a deadline.
//!
//! One engine serves every plugin. Nothing here knows about plugins or calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances. A call's deadline and cancellation are checked at this
/// granularity, and a running guest yields to the async executor this often.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Wasm stack per call. A deep recursion traps (`StackOverflow`) here instead of exhausting
/// the host thread's native stack; it must stay below the async fiber stack.
const MAX_WASM_STACK: usize = 1 << 20;
const ASYNC_STACK: usize = 2 << 20;

/// How the engine finds memory, tables and fiber stacks for each call's instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceAllocator {
    /// Slots reserved once at start-up and recycled per call (copy-on-write memory images,
    /// reset with `madvise`), so a call maps no new memory. The default: it halves the cost of
    /// a fresh instance per call.
    #[default]
    Pooling,
    /// `mmap` and `munmap` for every instance: no reservation up front, more kernel work per call.
    OnDemand,
}

/// Instances alive at once. The worker runs one call at a time; loading a plugin (its
/// `describe()`) may overlap with it during a hot reload, and each instance of a component
/// needs a few core instances (the guest, the WASI adapter, shims).
const POOLED_COMPONENT_INSTANCES: u32 = 16;
/// A linear memory may grow to the largest `--memory-limit-mib` accepts; the per-call limit is
/// still the store's limiter. Only address space is reserved for it, not memory.
const POOLED_MEMORY_BYTES: usize = 4 << 30;
/// Up to this much of a slot's memory stays mapped between calls and is reset in place (only
/// the pages the last call touched, found with `PAGEMAP_SCAN` on Linux ≥ 6.7), so the next call
/// does not page-fault its stack and heap back in. The rest is returned with `madvise`.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

pub(crate) fn new_engine(allocator: InstanceAllocator) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .cranelift_opt_level(OptLevel::Speed);
    if allocator == InstanceAllocator::Pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_COMPONENT_INSTANCES)
            .total_core_instances(POOLED_COMPONENT_INSTANCES * 4)
            .total_memories(POOLED_COMPONENT_INSTANCES * 2)
            .total_tables(POOLED_COMPONENT_INSTANCES * 4)
            .total_stacks(POOLED_COMPONENT_INSTANCES)
            .max_memory_size(POOLED_MEMORY_BYTES)
            .max_core_instances_per_component(32)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread, for as long as it lives.
/// Dropping it stops and joins the thread, so no ticker outlives its engine.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("sanctum-epoch".into()).spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
