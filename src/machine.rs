//! What the machine has, for defaults sized by it (the server's memory cap, the build's
//! budget for held results).

use sysinfo::{MemoryRefreshKind, RefreshKind, System};

/// Physical memory in bytes, `None` when the system does not say.
pub fn physical_memory() -> Option<usize> {
    let memory = MemoryRefreshKind::nothing().with_ram();
    let system = System::new_with_specifics(RefreshKind::nothing().with_memory(memory));
    usize::try_from(system.total_memory())
        .ok()
        .filter(|&bytes| bytes > 0)
}
