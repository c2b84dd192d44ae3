//! The module's heap in use, as the timeline's memory bound needs it ([`crate::timeline`]).
//!
//! In the browser every allocation goes through a counting wrapper of the standard allocator
//! (`stats_alloc`, installed here as the global allocator on wasm32 only), so [`in_use`]
//! answers the bytes allocated and not yet freed: everything the simulator, its snapshots and
//! the page's state hold. The wasm memory itself (`WebAssembly.Memory`) only grows, so it says
//! how much was ever needed, not how much is held now. On the host (tests, tools) nothing is
//! installed and [`in_use`] answers `None`.

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, where counted (wasm32).
pub fn in_use() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        // Both counters wrap (usize is 32 bits here, and a long run allocates far more than
        // 4 GiB in all); what is held is less, so the wrapping difference is exact.
        let s = HEAP.stats();
        Some(s.bytes_allocated.wrapping_sub(s.bytes_deallocated) as u64)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}
