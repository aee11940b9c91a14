//! A queue of work items drained by a few concurrent workers, with progress on stderr: how
//! the server benches ingest in batches, so that one slow batch doesn't idle the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

/// Runs `work` over `items` with `clients` concurrent workers; returns the wall time.
pub async fn parallel<I, W, F>(clients: usize, items: Vec<I>, work: W) -> Result<Duration>
where
    I: Send + 'static,
    W: Fn(I) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<()>> + Send,
{
    let total = items.len();
    let queue = Arc::new(parking_lot::Mutex::new(items));
    let work = Arc::new(work);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, work, done) = (queue.clone(), work.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(item) = queue.lock().pop() else {
                    break;
                };
                work(item).await?;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(20) || d == total {
                    eprintln!("ingest: {d}/{total} batches");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}
