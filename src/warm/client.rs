//! `orthanc-edge warm`: drive a running edge's warm-up job and show its progress.

use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

pub struct WarmArgs {
    pub url: String,
    pub api_key: String,
    pub studies: Vec<String>,
    pub series: Vec<String>,
    pub presets: Vec<String>,
}

/// Start the job, follow it to the end; Ok only if nothing failed.
pub async fn run(args: WarmArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let base = args.url.trim_end_matches('/').to_owned();
    let resp = http
        .post(format!("{base}/warm"))
        .header("X-Api-Key", &args.api_key)
        .json(&json!({"studies": args.studies, "series": args.series, "presets": args.presets}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        bail!("edge refused the job ({status}): {}", body["message"].as_str().unwrap_or("no message"));
    }
    let id = body["id"].as_str().context("edge answered without a job id")?.to_owned();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let last = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let p: Value = http
            .get(format!("{base}/warm/{id}"))
            .header("X-Api-Key", &args.api_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        bar.set_length(p["total"].as_u64().unwrap_or(0));
        // Failures are work finished too, for the bar.
        bar.set_position(p["done"].as_u64().unwrap_or(0) + p["failed"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{} skipped, {} failed",
            p["skipped"].as_u64().unwrap_or(0),
            p["failed"].as_u64().unwrap_or(0)
        ));
        if matches!(p["state"].as_str(), Some("done" | "cancelled")) {
            break p;
        }
    };
    bar.finish();
    let failed = last["failed"].as_u64().unwrap_or(0);
    let (done, skipped) = (last["done"].as_u64().unwrap_or(0), last["skipped"].as_u64().unwrap_or(0));
    let made = done.saturating_sub(skipped);
    let rate = match made {
        0 => String::new(),
        _ => format!(", {:.1} images made/s", last["rate_per_s"].as_f64().unwrap_or(0.0)),
    };
    eprintln!(
        "warm-up {id}: {made} made, {skipped} already cached, {failed} failed, {} bytes{rate}",
        last["bytes"].as_u64().unwrap_or(0),
    );
    if let Some(failures) = last["failures"].as_array() {
        for f in failures.iter().take(20) {
            let variants: Vec<&str> =
                f["variants"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
            let which =
                if variants.is_empty() { String::new() } else { format!(" for {}", variants.join(", ")) };
            eprintln!(
                "  failed: {} ({}){which}",
                f["resource"].as_str().unwrap_or("?"),
                f["code"].as_str().unwrap_or("?")
            );
        }
    }
    if last["state"] == "cancelled" {
        bail!("the job was cancelled");
    }
    if failed > 0 {
        bail!("{failed} images failed");
    }
    Ok(())
}
