//! Making variants: specs, source pixels, resize, encode, and the bounded CPU pool they run on.

pub mod dicomweb;
pub mod encode;
pub mod placeholder;
pub mod resize;
pub mod source;
pub mod spec;

use std::sync::Arc;

use tokio::sync::Semaphore;

pub use source::{Pixels, SOURCE_CONTENT_TYPE};
pub use spec::VariantSpec;

#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum TransformError {
    #[error("the image service is busy; try again shortly")]
    Overloaded,
    #[error("the source image is {width}x{height}, larger than the configured limit")]
    SourceTooLarge { width: u64, height: u64 },
    #[error("Orthanc sent an unusable source image")]
    BadSource(String),
    #[error("encoding failed")]
    Encode(String),
}

impl TransformError {
    pub fn code(&self) -> &'static str {
        match self {
            TransformError::Overloaded => "overloaded",
            TransformError::SourceTooLarge { .. } => "source-too-large",
            TransformError::BadSource(_) => "upstream-bad-response",
            TransformError::Encode(_) => "internal",
        }
    }
}

/// Resample and encode every variant of one source, resampling once per distinct geometry (a
/// WebP and a JPEG of the same size share one resize). Blocking. One result per spec, in order.
pub fn render_all(
    pixels: &Pixels,
    specs: &[VariantSpec],
    allow_upscale: bool,
) -> Vec<Result<Vec<u8>, TransformError>> {
    render_all_at(pixels, (pixels.width, pixels.height), specs, allow_upscale)
}

/// [`render_all`] from `pixels` that are a resolution level of a `full`-size frame (a JPEG 2000
/// frame decoded below full size, see [`resize::max_reduction`]): each output is the one the
/// full frame gives, in size and in where its pixels sit.
pub fn render_all_at(
    pixels: &Pixels,
    full: (u32, u32),
    specs: &[VariantSpec],
    allow_upscale: bool,
) -> Vec<Result<Vec<u8>, TransformError>> {
    let Some(level) = resize::level(full, (pixels.width, pixels.height)) else {
        let e = TransformError::BadSource(format!(
            "{}x{} is no level of {}x{}",
            pixels.width, pixels.height, full.0, full.1
        ));
        return specs.iter().map(|_| Err(e.clone())).collect();
    };
    let padded;
    let pixels = if level == 0 {
        pixels
    } else {
        padded = resize::padded(pixels);
        &padded
    };
    let mut resized: Vec<(resize::Geometry, Result<std::borrow::Cow<'_, Pixels>, TransformError>)> =
        Vec::new();
    specs
        .iter()
        .map(|spec| {
            let g = resize::geometry(full.0, full.1, spec, allow_upscale).at_level(level);
            let i = match resized.iter().position(|(done, _)| *done == g) {
                Some(i) => i,
                None => {
                    resized.push((g, resize::resize(pixels, &g)));
                    resized.len() - 1
                }
            };
            match &resized[i].1 {
                Ok(out) => encode::encode(out, spec.format, spec.q),
                Err(e) => Err(e.clone()),
            }
        })
        .collect()
}

/// Decompress a cached source, resample, encode: the whole CPU path of one variant. Blocking.
pub fn render(source: &[u8], spec: &VariantSpec, allow_upscale: bool) -> Result<Vec<u8>, TransformError> {
    let pixels = Pixels::decompress(source)?;
    let mut out = render_all(&pixels, std::slice::from_ref(spec), allow_upscale);
    out.pop().unwrap_or_else(|| Err(TransformError::Encode("no output".into())))
}

/// A bounded pool for CPU work: `workers` jobs run at once, `queue` more may wait; beyond that,
/// callers are refused at once (`Overloaded`) instead of piling up memory.
#[derive(Clone, Debug)]
pub struct TransformPool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
}

impl TransformPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
            capacity: workers + queue,
        }
    }

    /// Run `job` on a blocking thread once a worker slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, TransformError>
    where
        F: FnOnce() -> Result<T, TransformError> + Send + 'static,
        T: Send + 'static,
    {
        let started = std::time::Instant::now();
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            crate::telemetry::metrics::transform_rejected();
            TransformError::Overloaded
        })?;
        let _running = self.running.acquire().await.map_err(|_| TransformError::Overloaded)?;
        let out = tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| TransformError::Encode(format!("transform task failed: {e}")))?;
        crate::telemetry::metrics::transform(started.elapsed());
        out
    }

    /// Jobs that run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs admitted (running or queued), for metrics.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn refuses_beyond_workers_plus_queue() {
        let pool = TransformPool::new(1, 1);
        let slow = || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        };
        let a = tokio::spawn({
            let p = pool.clone();
            async move { p.run(slow).await }
        });
        let b = tokio::spawn({
            let p = pool.clone();
            async move { p.run(slow).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.in_flight(), 2);
        let started = std::time::Instant::now();
        assert!(matches!(pool.run(|| Ok(())).await, Err(TransformError::Overloaded)));
        assert!(started.elapsed() < Duration::from_millis(50), "refused at once");
        assert!(a.await.unwrap().is_ok() && b.await.unwrap().is_ok());
        assert!(pool.run(|| Ok(())).await.is_ok());
    }
}
