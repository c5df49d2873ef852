//! Learning-rate schedules: DeepSeek's multi-step schedule, constant, and cosine, each with linear warm-up.
//!
//! Steps are 0-based optimizer-step indices: step `s` is the `(s+1)`-th update. Warm-up is linear and reaches the
//! peak at the end of step `warmup - 1` (`lr(s) = peak * (s+1) / warmup`), so the very first update already moves
//! the weights. Multi-step: from step `floor(m_i * total)` on, the rate is `factor_i * peak` (the paper: 31.6%
//! from 80% of training, 10% from 90%).

use crate::config::{ScheduleConfig, ScheduleKind};

/// A learning-rate schedule over a fixed number of steps.
#[derive(Debug, Clone)]
pub struct LrSchedule {
    kind: ScheduleKind,
    peak: f64,
    warmup: usize,
    total: usize,
    milestones: Vec<(usize, f64)>,
    min_ratio: f64,
}

impl LrSchedule {
    /// Builds the schedule from its config, the peak LR and the run length.
    pub fn new(cfg: &ScheduleConfig, peak_lr: f64, total_steps: usize) -> Self {
        let milestones = cfg
            .milestones
            .iter()
            .zip(&cfg.milestone_factors)
            .map(|(m, f)| ((m * total_steps as f64).floor() as usize, *f))
            .collect();
        Self {
            kind: cfg.kind,
            peak: peak_lr,
            warmup: cfg.warmup_steps,
            total: total_steps,
            milestones,
            min_ratio: cfg.min_lr_ratio,
        }
    }

    /// The learning rate for 0-based step `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        match self.kind {
            ScheduleKind::Constant => self.peak,
            ScheduleKind::MultiStep => {
                let factor = self
                    .milestones
                    .iter()
                    .filter(|(at, _)| step >= *at)
                    .map(|(_, f)| *f)
                    .next_back();
                self.peak * factor.unwrap_or(1.0)
            }
            ScheduleKind::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let progress = ((step - self.warmup) as f64 / span).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.peak * (self.min_ratio + (1.0 - self.min_ratio) * cosine)
            }
        }
    }

    /// Total steps the schedule was built for.
    pub fn total_steps(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: ScheduleKind, warmup: usize) -> ScheduleConfig {
        ScheduleConfig {
            kind,
            warmup_steps: warmup,
            total_steps: 0,
            train_tokens: 0.0,
            milestones: vec![0.8, 0.9],
            milestone_factors: vec![0.316, 0.1],
            min_lr_ratio: 0.1,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-30)
    }

    #[test]
    fn paper_multi_step_schedule_at_its_breakpoints() {
        // DeepSeekMath-Base: peak 4.2e-4, 2000 warm-up steps, 500B tokens / 10M tokens per step = 50,000 steps.
        let peak = 4.2e-4;
        let s = LrSchedule::new(&cfg(ScheduleKind::MultiStep, 2000), peak, 50_000);
        assert!(close(s.lr(0), peak / 2000.0));
        assert!(close(s.lr(999), peak * 0.5));
        assert!(close(s.lr(1998), peak * 1999.0 / 2000.0));
        assert!(close(s.lr(1999), peak), "peak reached after 2000 warm-up steps");
        assert!(close(s.lr(2000), peak));
        assert!(close(s.lr(39_999), peak), "last step before 80%");
        assert!(close(s.lr(40_000), 0.316 * peak), "31.6% from 80% of training");
        assert!(close(s.lr(44_999), 0.316 * peak));
        assert!(close(s.lr(45_000), 0.1 * peak), "10% from 90% of training");
        assert!(close(s.lr(49_999), 0.1 * peak));
        // Monotone non-increasing after warm-up.
        assert!((2000..50_000).step_by(97).all(|i| s.lr(i + 1) <= s.lr(i)));
    }

    #[test]
    fn constant_and_cosine() {
        let c = LrSchedule::new(&cfg(ScheduleKind::Constant, 0), 5e-5, 500);
        assert!((0..500).all(|i| c.lr(i) == 5e-5));
        let k = LrSchedule::new(&cfg(ScheduleKind::Cosine, 10), 1.0, 110);
        assert!(close(k.lr(9), 1.0));
        assert!(close(k.lr(10), 1.0));
        assert!(close(k.lr(60), 0.55), "half-way: min + (1-min)/2");
        assert!(close(k.lr(110), 0.1));
        assert!(close(k.lr(500), 0.1), "clamped after the end");
    }
}
