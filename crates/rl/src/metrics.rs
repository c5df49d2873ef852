//! Run metrics: one JSON object per line in `metrics.jsonl`, and a PNG of reward and held-out accuracy.
//!
//! JSONL is the format every plotting tool reads and it survives crashes (each line is flushed). The PNG is drawn
//! with plotters' bitmap backend so a run folder is self-describing without Python.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything logged for one training step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
// Missing fields read as zero/None, so files written by older or newer versions still load.
#[serde(default)]
pub struct StepMetrics {
    /// 1-based step number.
    pub step: usize,
    /// Mean reward of the step's outputs.
    pub reward_mean: f64,
    /// Standard deviation of the rewards.
    pub reward_std: f64,
    /// Fraction of outputs whose answer the verifier accepted.
    pub accuracy: f64,
    /// Masked mean per-token k3 KL to the reference (first update of the stage).
    pub kl: f64,
    /// Fraction of tokens clipped below (negative advantages).
    pub clip_low: f64,
    /// Fraction of tokens clipped above (positive advantages).
    pub clip_high: f64,
    /// Mean per-token entropy of the policy on its samples.
    pub entropy: f64,
    /// Mean completion length in tokens.
    pub response_length: f64,
    /// Fraction of completions cut at the length limit.
    pub truncated_fraction: f64,
    /// Fraction of groups whose rewards are all equal.
    pub zero_variance_fraction: f64,
    /// Loss of the last update (sum over micro-batches).
    pub loss: f64,
    /// Global gradient norm before clipping (last update).
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Seconds spent sampling.
    pub time_generate: f64,
    /// Seconds spent scoring (rewards).
    pub time_score: f64,
    /// Seconds spent on old/reference log-probs and policy updates.
    pub time_train: f64,
    /// Mean process-reward-model score over all steps of the step's outputs (process supervision only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step_reward_mean: Option<f64>,
    /// Held-out accuracy, on the steps where it was measured.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eval_accuracy: Option<f64>,
}

/// Appends records to a JSONL file, flushing each line.
pub struct JsonlWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl JsonlWriter {
    /// Opens (appending) `path`.
    pub fn append(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes one record.
    pub fn write<T: Serialize>(&mut self, record: &T) -> anyhow::Result<()> {
        let line = serde_json::to_string(record)?;
        writeln!(self.file, "{line}").with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush()?;
        Ok(())
    }
}

/// Reads back the step records of a `metrics.jsonl` (malformed lines skipped with a warning).
pub fn read_metrics(path: &Path) -> anyhow::Result<Vec<StepMetrics>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str::<StepMetrics>(line) {
            Ok(m) => out.push(m),
            Err(e) => tracing::warn!("{}:{}: skipped: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

fn register_font() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        for c in candidates {
            if let Ok(bytes) = std::fs::read(c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        tracing::warn!("no TrueType font found; curves.png is drawn without labels");
        false
    })
}

/// Draws training reward (mean per step) and held-out accuracy against the step into a PNG.
pub fn plot_curves(metrics: &[StepMetrics], baseline_eval: Option<f64>, path: &Path) -> anyhow::Result<()> {
    let labels = register_font();
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let max_step = metrics.iter().map(|m| m.step).max().unwrap_or(1).max(1) as f64;
    let reward: Vec<(f64, f64)> = metrics.iter().map(|m| (m.step as f64, m.reward_mean)).collect();
    let mut eval: Vec<(f64, f64)> = baseline_eval.map(|a| vec![(0.0, a)]).unwrap_or_default();
    eval.extend(
        metrics
            .iter()
            .filter_map(|m| m.eval_accuracy.map(|a| (m.step as f64, a))),
    );
    let ymax = reward.iter().chain(&eval).map(|p| p.1).fold(1.0f64, f64::max);
    let ymin = reward.iter().chain(&eval).map(|p| p.1).fold(0.0f64, f64::min);
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(15)
        .x_label_area_size(if labels { 35 } else { 5 })
        .y_label_area_size(if labels { 50 } else { 5 });
    if labels {
        builder.caption("GRPO: training reward and held-out accuracy", ("sans-serif", 22));
    }
    let mut chart = builder
        .build_cartesian_2d(0.0..max_step, ymin..ymax)
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let mut mesh = chart.configure_mesh();
    if labels {
        mesh.x_desc("step").y_desc("reward / accuracy");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let series = chart
        .draw_series(LineSeries::new(reward, &BLUE))
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    if labels {
        series
            .label("train reward (mean)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    }
    let series = chart
        .draw_series(LineSeries::new(eval.clone(), RED.stroke_width(2)))
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    if labels {
        series
            .label("held-out accuracy")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    chart
        .draw_series(eval.iter().map(|p| Circle::new(*p, 3, RED.filled())))
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    if labels {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("plot {}: {e}", path.display()))?;
    Ok(())
}

/// Every numeric field of `m` (except `step`) as a TensorBoard scalar named `grpo/<field>`; fields without a
/// value (e.g. `eval_accuracy` between evaluations) are left out.
pub fn tensorboard_scalars(m: &StepMetrics) -> Vec<(String, f32)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(m) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter(|(name, _)| name != "step")
        .filter_map(|(name, value)| value.as_f64().map(|v| (format!("grpo/{name}"), v as f32)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trip_and_plot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = JsonlWriter::append(&path).unwrap();
        for step in 1..=5 {
            let m = StepMetrics {
                step,
                reward_mean: step as f64 / 10.0,
                eval_accuracy: (step % 2 == 0).then_some(0.2 + step as f64 / 20.0),
                ..Default::default()
            };
            w.write(&m).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back[1].eval_accuracy, Some(0.2 + 2.0 / 20.0));
        let png = dir.path().join("curves.png");
        plot_curves(&back, Some(0.1), &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 1000);
    }

    #[test]
    fn tensorboard_scalars_cover_set_fields_only() {
        let m = StepMetrics {
            step: 3,
            reward_mean: 0.5,
            kl: 0.25,
            ..Default::default()
        };
        let scalars = tensorboard_scalars(&m);
        assert!(scalars.contains(&("grpo/reward_mean".to_string(), 0.5)));
        assert!(scalars.contains(&("grpo/kl".to_string(), 0.25)));
        assert!(scalars
            .iter()
            .all(|(n, _)| n != "grpo/step" && n != "grpo/eval_accuracy"));
        let with_eval = StepMetrics {
            eval_accuracy: Some(0.75),
            ..m
        };
        assert!(tensorboard_scalars(&with_eval).contains(&("grpo/eval_accuracy".to_string(), 0.75)));
    }
}
