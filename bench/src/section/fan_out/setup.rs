//! Setting up and tearing down thousands of watchers on a few threads:
//! one after another, each a round trip or two, 2,000 take long enough to
//! matter in the full run's budget.

use anyhow::bail;

/// Threads that connect (and later close) the watchers' sessions.
const SETUP_THREADS: usize = 4;

/// `f(i)` for every `i` in `0..n`, in order, on [`SETUP_THREADS`] threads.
pub fn in_parallel<T: Send>(
    n: usize,
    f: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let chunk = n.div_ceil(SETUP_THREADS).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                scope.spawn(move || (start..(start + chunk).min(n)).map(f).collect())
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for part in parts {
            match part.join() {
                Ok(Ok(items)) => all.extend::<Vec<T>>(items),
                Ok(Err(err)) => return Err(err),
                Err(_) => bail!("a setup thread panicked"),
            }
        }
        Ok(all)
    })
}

/// Drops `items` on [`SETUP_THREADS`] threads: each `Discovery` removes its
/// watch and closes its session, a round trip each.
pub fn drop_in_parallel<T: Send>(mut items: Vec<T>) {
    let chunk = items.len().div_ceil(SETUP_THREADS).max(1);
    let mut parts = Vec::new();
    while items.len() > chunk {
        parts.push(items.split_off(items.len() - chunk));
    }
    parts.push(items);
    std::thread::scope(|scope| {
        for part in parts {
            scope.spawn(move || drop(part));
        }
    });
}
