//! Warm-up jobs: expand studies/series into instances, make each preset's variants ahead of time.

pub mod changes;
pub mod client;
pub mod position;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::ids::OrthancId;
use crate::model::{ImageFormat, Rendering};
use crate::previews::{PreviewError, PreviewService};
use crate::sync::LockExt;
use crate::telemetry::metrics;
use crate::transform::spec::{self, FormatChoice, Limits, Preset, VariantParams};
use crate::upstream::catalog::Catalog;
use crate::upstream::{Priority, UpstreamError};

/// Why a job was refused, or why one of its resources failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WarmError {
    /// The request names no resource, too many, or an unknown preset.
    #[error("{0}")]
    BadParam(String),
    #[error("{0}")]
    BadId(String),
    /// Listing a study's series or a series' instances.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Making an instance's variants.
    #[error(transparent)]
    Preview(#[from] PreviewError),
}

impl WarmError {
    /// The stable code a failure is reported with (the one Http would answer with).
    pub fn code(&self) -> &'static str {
        match self {
            WarmError::BadParam(_) => "bad-param",
            WarmError::BadId(_) => "bad-id",
            WarmError::Upstream(e) => e.code(),
            WarmError::Preview(e) => e.code(),
        }
    }
}

/// Most failure reasons kept per job.
const MAX_FAILURES_KEPT: usize = 100;

/// `POST /warm` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmRequest {
    #[serde(default)]
    pub studies: Vec<String>,
    #[serde(default)]
    pub series: Vec<String>,
    pub presets: Vec<String>,
}

/// One resource that failed, once per cause: the variants it failed for (`thumb webp`), none
/// when it failed before any (a study or series that could not be listed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub resource: String,
    pub code: String,
    pub variants: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Listing,
    Running,
    Done,
    Cancelled,
}

/// What `GET /warm/{id}` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub id: String,
    pub state: JobState,
    /// Images to make (instances × variants), known once listing is over.
    pub total: u64,
    /// Images there now: made, or already cached. Failures are not among them.
    pub done: u64,
    /// Of `done`, those already cached.
    pub skipped: u64,
    /// Images (and resources not listed) that failed.
    pub failed: u64,
    pub failures: Vec<Failure>,
    pub bytes: u64,
    pub elapsed_s: f64,
    /// Images made per second (not counting those already cached).
    pub rate_per_s: f64,
}

struct Job {
    id: String,
    started: Instant,
    finished: Mutex<Option<Duration>>,
    state: Mutex<JobState>,
    cancelled: AtomicBool,
    total: AtomicU64,
    done: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    failures: Mutex<Vec<Failure>>,
}

impl Job {
    fn progress(&self) -> Progress {
        let elapsed = self.finished.locked().unwrap_or_else(|| self.started.elapsed());
        let done = self.done.load(Ordering::Relaxed);
        let skipped = self.skipped.load(Ordering::Relaxed);
        let made = done.saturating_sub(skipped);
        let secs = elapsed.as_secs_f64();
        Progress {
            id: self.id.clone(),
            state: *self.state.locked(),
            total: self.total.load(Ordering::Relaxed),
            done,
            skipped,
            failed: self.failed.load(Ordering::Relaxed),
            failures: self.failures.locked().clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            elapsed_s: (secs * 1000.0).round() / 1000.0,
            rate_per_s: if secs > 0.0 { (made as f64 / secs * 10.0).round() / 10.0 } else { 0.0 },
        }
    }

    fn set_state(&self, state: JobState) {
        {
            let mut s = self.state.locked();
            // A cancelled job stays cancelled.
            if *s != JobState::Cancelled {
                *s = state;
            }
        }
        if matches!(state, JobState::Done | JobState::Cancelled) {
            self.finished.locked().get_or_insert(self.started.elapsed());
        }
    }

    /// `resource` failed with `e`, for `variant` (`None`: before any variant).
    fn fail(&self, resource: &str, variant: Option<&str>, e: &WarmError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.locked();
        let code = e.code();
        let variants = variant.map(str::to_owned).into_iter();
        if let Some(seen) = f.iter_mut().find(|x| x.resource == resource && x.code == code) {
            seen.variants.extend(variants);
        } else if f.len() < MAX_FAILURES_KEPT {
            f.push(Failure {
                resource: resource.to_owned(),
                code: code.to_owned(),
                variants: variants.collect(),
            });
        }
    }
}

/// The variants a preset warms: `auto` warms both what browsers get (WebP) and what viewers get (JPEG).
pub fn preset_outputs(preset: &Preset, limits: &Limits) -> Vec<crate::transform::VariantSpec> {
    let params = VariantParams::from(preset);
    let accepts: &[&str] = match preset.format {
        Some(FormatChoice::Auto) => &["image/webp", "image/jpeg"],
        _ => &["image/jpeg"],
    };
    let mut out: Vec<_> =
        accepts.iter().map(|a| spec::resolve(&params, ImageFormat::Jpeg, a, limits).0).collect();
    out.dedup();
    out
}

/// Runs and tracks warm-up jobs.
#[derive(Clone)]
pub struct Warmer {
    previews: PreviewService,
    catalog: Catalog,
    presets: Arc<std::collections::BTreeMap<String, Preset>>,
    limits: Limits,
    concurrency: usize,
    max_resources: usize,
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
}

impl Warmer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        previews: PreviewService,
        catalog: Catalog,
        presets: Arc<std::collections::BTreeMap<String, Preset>>,
        limits: Limits,
        concurrency: usize,
        max_resources: usize,
    ) -> Self {
        Self {
            previews,
            catalog,
            presets,
            limits,
            concurrency: concurrency.max(1),
            max_resources,
            jobs: Arc::default(),
        }
    }

    /// Validate and start a job; returns its id.
    pub fn start(&self, req: WarmRequest) -> Result<String, WarmError> {
        let (studies, series) = self.validate(&req)?;
        let job = Arc::new(Job {
            id: uuid::Uuid::new_v4().simple().to_string(),
            started: Instant::now(),
            finished: Mutex::new(None),
            state: Mutex::new(JobState::Listing),
            cancelled: AtomicBool::new(false),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        });
        let id = job.id.clone();
        self.jobs.locked().insert(id.clone(), job.clone());
        let this = self.clone();
        tokio::spawn(async move { this.run(job, studies, series, req.presets).await });
        Ok(id)
    }

    fn validate(&self, req: &WarmRequest) -> Result<(Vec<OrthancId>, Vec<OrthancId>), WarmError> {
        if req.studies.is_empty() && req.series.is_empty() {
            return Err(WarmError::BadParam("give at least one of `studies` or `series`".into()));
        }
        if req.studies.len() + req.series.len() > self.max_resources {
            return Err(WarmError::BadParam(format!(
                "at most {} resources per job (`warm.max_resources`)",
                self.max_resources
            )));
        }
        if req.presets.is_empty() {
            return Err(WarmError::BadParam("`presets` must name at least one preset".into()));
        }
        for p in &req.presets {
            if !self.presets.contains_key(p) {
                return Err(WarmError::BadParam(format!(
                    "`presets`: no preset named {:?}",
                    p.chars().take(64).collect::<String>()
                )));
            }
        }
        let parse = |ids: &[String], what: &str| -> Result<Vec<OrthancId>, WarmError> {
            ids.iter()
                .map(|s| {
                    OrthancId::parse(s)
                        .ok_or_else(|| WarmError::BadId(format!("`{what}` holds a malformed Orthanc id")))
                })
                .collect()
        };
        Ok((parse(&req.studies, "studies")?, parse(&req.series, "series")?))
    }

    pub fn progress(&self, id: &str) -> Option<Progress> {
        self.jobs.locked().get(id).map(|j| j.progress())
    }

    /// Cancel a job; `None` when there is no such job.
    pub fn cancel(&self, id: &str) -> Option<Progress> {
        let job = self.jobs.locked().get(id).cloned()?;
        job.cancelled.store(true, Ordering::Relaxed);
        job.set_state(JobState::Cancelled);
        self.publish_job_counts();
        Some(job.progress())
    }

    /// Warm the given presets for these resources now (used by the /changes follower).
    pub async fn warm_now(
        &self,
        studies: Vec<OrthancId>,
        series: Vec<OrthancId>,
        presets: Vec<String>,
    ) -> Progress {
        let req = WarmRequest {
            studies: studies.iter().map(ToString::to_string).collect(),
            series: series.iter().map(ToString::to_string).collect(),
            presets: presets.clone(),
        };
        match self.start(req) {
            Ok(id) => loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                match self.progress(&id) {
                    Some(p) if matches!(p.state, JobState::Done | JobState::Cancelled) => return p,
                    Some(_) => {}
                    None => return Progress::empty(&id),
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "warm-up from /changes refused");
                Progress::empty("-")
            }
        }
    }

    async fn run(
        &self,
        job: Arc<Job>,
        studies: Vec<OrthancId>,
        series: Vec<OrthancId>,
        presets: Vec<String>,
    ) {
        let mut all_series = series;
        for study in &studies {
            match self.catalog.study_series(study).await {
                Ok(s) => all_series.extend(s),
                Err(e) => job.fail(study.as_str(), None, &e.into()),
            }
        }
        let mut instances = Vec::new();
        for s in &all_series {
            if job.cancelled.load(Ordering::Relaxed) {
                return;
            }
            match self.catalog.series_instances(s).await {
                Ok(list) => instances.extend(list.iter().cloned()),
                Err(e) => job.fail(s.as_str(), None, &e.into()),
            }
        }
        instances.truncate(self.max_resources);
        // Each variant with its name in failures: the preset and the format.
        let (variants, labels): (Vec<_>, Vec<String>) = presets
            .iter()
            .filter_map(|name| Some((name, self.presets.get(name)?)))
            .flat_map(|(name, p)| {
                preset_outputs(p, &self.limits).into_iter().map(move |v| {
                    let label = format!("{name} {}", v.format.name());
                    (v, label)
                })
            })
            .unzip();
        job.total.store(
            (instances.len() * variants.len()) as u64 + job.failed.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        job.set_state(JobState::Running);
        // One item per instance: its variants share one source fetch, decode and resize.
        stream::iter(instances)
            .for_each_concurrent(self.concurrency, |instance| {
                let (job, variants, labels) = (job.clone(), &variants, &labels);
                async move {
                    if job.cancelled.load(Ordering::Relaxed) {
                        return;
                    }
                    // Background priority: a waiting person gets the next Orthanc slot first.
                    let results = self
                        .previews
                        .warm(&instance, Rendering::Preview, variants, Priority::Background)
                        .await;
                    for (result, label) in results.into_iter().zip(labels) {
                        match result {
                            Ok(warmed) => {
                                if !warmed.made {
                                    job.skipped.fetch_add(1, Ordering::Relaxed);
                                    metrics::warm_item("skipped");
                                } else {
                                    metrics::warm_item("made");
                                }
                                job.bytes.fetch_add(warmed.bytes, Ordering::Relaxed);
                                job.done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                metrics::warm_item("failed");
                                job.fail(instance.as_str(), Some(label), &WarmError::from(e));
                            }
                        }
                    }
                }
            })
            .await;
        job.set_state(JobState::Done);
        self.publish_job_counts();
    }

    /// Jobs by state, for the `warm_jobs` gauge.
    fn publish_job_counts(&self) {
        let jobs = self.jobs.locked();
        let mut counts = [0i64; 4];
        for j in jobs.values() {
            let i = match *j.state.locked() {
                JobState::Listing => 0,
                JobState::Running => 1,
                JobState::Done => 2,
                JobState::Cancelled => 3,
            };
            counts[i] += 1;
        }
        for (state, n) in ["listing", "running", "done", "cancelled"].into_iter().zip(counts) {
            metrics::warm_jobs(state, n);
        }
    }
}

impl Progress {
    fn empty(id: &str) -> Self {
        Progress {
            id: id.to_owned(),
            state: JobState::Done,
            total: 0,
            done: 0,
            skipped: 0,
            failed: 0,
            failures: vec![],
            bytes: 0,
            elapsed_s: 0.0,
            rate_per_s: 0.0,
        }
    }
}
