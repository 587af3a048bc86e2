//! Entering a network namespace: the lab's relays live in its hosts.

/// Moves the calling thread into the network namespace at `path`.
#[allow(unsafe_code)] // the one system call std lacks; see the SAFETY note
pub(crate) fn enter(path: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // SAFETY: setns takes an open namespace descriptor, which `file` holds
    // for the whole call, and a namespace type; it touches no memory.
    let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
