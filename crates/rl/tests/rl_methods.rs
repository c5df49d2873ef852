//! End-to-end CPU tests of the issue-8 methods on the tiny llama2.c model `stories260K` from the shared data pack:
//! reward models (Math-Shepherd labels and a user-labelled file; save/load), process-supervised GRPO, iterative RL
//! with a reference reset and PRM replay, and every §5.2 method of the unified trainer. Skips with a reason when
//! the shared data is missing.
//!
//! The tiny model writes stories, not arithmetic, so a verifier would never fire; the tests use a deterministic
//! stand-in "verifier" (a completion is "correct" when its text has an even number of bytes), which gives the mixed
//! right/wrong outcomes the methods need.

mod common;
use common::{max_abs_diff, tiny_model};

use std::path::Path;

use seekmath_model::load;
use seekmath_rl::advantage::{AdvantageEstimator, StepReward};
use seekmath_rl::config::GrpoConfig;
use seekmath_rl::iterative::{run_iterative, IterativeSection};
use seekmath_rl::metrics::read_metrics;
use seekmath_rl::models::Models;
use seekmath_rl::paradigm::Method;
use seekmath_rl::process::{StepBoundary, StepScorer};
use seekmath_rl::reward::{RewardFunction, RewardInput, RewardOutput};
use seekmath_rl::reward_model::{evaluate_rm, read_labelled, RewardModel, RewardModelKind, RmTrainOptions, RmTrainer};
use seekmath_rl::reward_training::{train_reward_model, RmSection};
use seekmath_rl::rollout::{EngineSampler, Rollout};
use seekmath_rl::run::load_task;
use seekmath_rl::shepherd::ShepherdOptions;
use seekmath_rl::task::Problem;
use seekmath_rl::trainer::GrpoTrainer;
use seekmath_rl::unified::{run_unified, MethodSection};
use tch::{Device, Kind, Tensor};

fn tiny_models(path: &Path) -> Models {
    let policy = load(path, Device::Cpu, Kind::Float).unwrap();
    let mut reference = load(path, Device::Cpu, Kind::Float).unwrap();
    reference.vs.freeze();
    Models::from_parts(policy, Some(reference)).unwrap()
}

fn tiny_config(dir: &Path, model: &Path) -> GrpoConfig {
    let mut c = GrpoConfig::default();
    c.model.path = model.to_path_buf();
    c.model.device = "cpu".into();
    c.task.chat_template = false;
    c.task.prompt_template = "{question}".into();
    c.task.train_size = 40;
    c.task.eval_size = 3;
    c.grpo.group_size = 4;
    c.grpo.questions_per_step = 2;
    c.grpo.micro_batch_size = 4;
    c.grpo.steps = 2;
    c.rollout.max_new_tokens = 8;
    c.eval.max_new_tokens = 4;
    c.eval.batch_size = 3;
    c.eval.every = 0;
    c.optim.lr = 1e-3;
    c.output.dir = dir.to_path_buf();
    c.seed = 5;
    c
}

/// Stand-in verifier: "correct" iff the completion has an even number of bytes.
struct EvenLength;

impl RewardFunction for EvenLength {
    fn name(&self) -> &str {
        "even-length"
    }
    fn score(&self, input: &RewardInput) -> RewardOutput {
        let correct = !input.completion.is_empty() && input.completion.len() % 2 == 0;
        RewardOutput {
            reward: f64::from(u8::from(correct)),
            correct: Some(correct),
        }
    }
}

fn rm_section(out: &Path) -> RmSection {
    RmSection {
        kind: RewardModelKind::Process,
        questions: 6,
        held_out_fraction: 0.34,
        shepherd: ShepherdOptions {
            samples_per_question: 2,
            rollouts_per_step: 2,
            boundary: StepBoundary::Separator(" ".into()),
            max_steps: 3,
            rollout: seekmath_rl::rollout::RolloutParams {
                max_new_tokens: 8,
                ..Default::default()
            },
            ..Default::default()
        },
        train: RmTrainOptions {
            lr: 1e-3,
            epochs: 3,
            batch_size: 4,
            ..Default::default()
        },
        out: out.to_path_buf(),
        ..Default::default()
    }
}

fn param(models: &Models, name: &str) -> Tensor {
    models.policy.vs.variables()[name].detach().copy()
}

#[test]
fn prm_from_math_shepherd_labels_trains_saves_loads_and_scores_steps() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), &path);
    let models = tiny_models(&path);
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let (train, _) = load_task(&config).unwrap();
    let section = rm_section(&dir.path().join("prm"));
    let (rm, _, train_set, held_out, report) =
        train_reward_model(&config, &section, &models, &mut sampler, &EvenLength, &train).unwrap();
    assert_eq!(report.source, "math-shepherd");
    assert!(report.completions > 0 && !train_set.is_empty() && !held_out.is_empty());
    // Held-out questions never appear in training.
    assert!(held_out
        .iter()
        .all(|h| train_set.iter().all(|t| t.question != h.question)));
    for e in train_set.iter().chain(&held_out) {
        assert!(e.positions.windows(2).all(|w| w[0] < w[1]) && e.positions.len() <= 3);
        assert!(e.labels.iter().all(|l| *l == 0.0 || *l == 1.0));
    }
    // A zero head predicts 0.5 everywhere: BCE = ln 2 before training.
    assert!(
        (report.before.bce - std::f64::consts::LN_2).abs() < 1e-6,
        "{:?}",
        report.before
    );
    assert!(report.epoch_losses.iter().all(|l| l.is_finite()));
    assert!(report.after.positions > 0 && (0.0..=1.0).contains(&report.after.step_accuracy));
    // Save/load round trip gives the same scores.
    let loaded = RewardModel::load(&section.out, Device::Cpu).unwrap();
    assert_eq!(loaded.meta, rm.meta);
    let a = rm.predict(&held_out, 8).unwrap();
    let b = loaded.predict(&held_out, 8).unwrap();
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-6);
    }
    assert!(dir.path().join("prm/report.json").is_file());
    // As a step scorer: one score per step, ending on completion tokens.
    let prompt = models.tokenizer().encode("Once upon a time", true).unwrap();
    let completion = models.tokenizer().encode(" there was a big dog", false).unwrap();
    let rollout = Rollout {
        prompt_index: 0,
        tokens: completion.clone(),
        text: String::new(),
        truncated: false,
    };
    let steps = rm.score_steps(&[prompt.as_slice()], &[rollout]).unwrap();
    assert_eq!(steps[0].len(), 5, "{:?}", steps[0]);
    assert_eq!(steps[0].last().unwrap().end_token, completion.len() - 1);
    assert!(steps[0].iter().all(|s| s.reward > 0.0 && s.reward < 1.0));
}

#[test]
fn prm_from_a_labelled_file_learns_its_labels() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), &path);
    let file = dir.path().join("labels.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"question\": \"Tom has 3 cats. He gets 2 more. How many?\", \"steps\": [\"Step 1: 3 plus 2 is 5.\", \"Step 2: The answer is 5.\"], \"labels\": [1, 1]}\n",
            "{\"question\": \"Ann has 4 dogs. One runs away. How many?\", \"steps\": [\"Step 1: 4 plus 1 is 5.\", \"Step 2: The answer is 5.\"], \"labels\": [0, 0]}\n",
            "{\"question\": \"Sam has 6 hats and loses 2. How many?\", \"steps\": [\"Step 1: 6 minus 2 is 4.\", \"Step 2: So 4.\", \"Step 3: The answer is 4.\"], \"labels\": [1, 1, 1]}\n",
            "not json\n",
            "{\"question\": \"Bad\", \"steps\": [\"Step 1: a\"], \"labels\": [1, 0]}\n",
        ),
    )
    .unwrap();
    let rm = RewardModel::new(&path, RewardModelKind::Process, StepBoundary::StepLabel, Device::Cpu).unwrap();
    let (examples, skipped) = read_labelled(&file, &rm, &config).unwrap();
    assert_eq!((examples.len(), skipped), (3, 2));
    assert_eq!(examples[2].positions.len(), 3);
    let before = evaluate_rm(&rm, &examples, 8).unwrap();
    let mut trainer = RmTrainer::new(&rm);
    let options = RmTrainOptions {
        lr: 3e-3,
        epochs: 15,
        batch_size: 3,
        ..Default::default()
    };
    let losses = trainer.train(&rm, &examples, &options).unwrap();
    let after = evaluate_rm(&rm, &examples, 8).unwrap();
    assert!(losses.last().unwrap() < &losses[0], "{losses:?}");
    assert!(after.bce < before.bce - 0.1, "{before:?} → {after:?}");
    assert_eq!(after.step_accuracy, 1.0, "{after:?}");
}

/// Scores each word (step) 1 when it has at least 4 letters.
struct LongWordSteps<'a>(&'a seekmath_model::Tokenizer);

impl StepScorer for LongWordSteps<'_> {
    fn score_steps(&self, _prompts: &[&[u32]], rollouts: &[Rollout]) -> anyhow::Result<Vec<Vec<StepReward>>> {
        let boundary = StepBoundary::Separator(" ".into());
        rollouts
            .iter()
            .map(|r| {
                let text = self.0.decode(&r.tokens, true)?;
                let char_ends = boundary.step_ends(&text);
                let ends = seekmath_rl::process::step_token_ends(self.0, &r.tokens, &char_ends)?;
                // Score by the word that ends at each (deduplicated) boundary token.
                Ok(ends
                    .iter()
                    .map(|&e| {
                        let upto = self.0.decode(&r.tokens[..=e], true).unwrap_or_default();
                        let word = upto.split_whitespace().last().unwrap_or("");
                        StepReward {
                            end_token: e,
                            reward: f64::from(u8::from(word.chars().filter(|c| c.is_alphabetic()).count() >= 4)),
                        }
                    })
                    .collect())
            })
            .collect()
    }
}

#[test]
fn process_supervised_grpo_raises_the_step_reward() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), &path);
    config.grpo.estimator = AdvantageEstimator::Process;
    config.grpo.group_size = 16;
    config.grpo.micro_batch_size = 16;
    config.optim.lr = 3e-3;
    config.optim.max_grad_norm = 0.0;
    config.rollout.max_new_tokens = 6;
    let models = tiny_models(&path);
    let scorer = LongWordSteps(models.tokenizer());
    let mut trainer = GrpoTrainer::new(config.clone(), &models);
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let questions = vec![
        Problem {
            question: "Once upon a time".into(),
            answer: String::new(),
        },
        Problem {
            question: "The dog".into(),
            answer: String::new(),
        },
    ];
    // Outcome supervision without a scorer is refused for a process config.
    assert!(trainer.step(&models, &mut sampler, &EvenLength, &questions).is_err());
    let measure = |sampler: &mut EngineSampler, step: usize| -> f64 {
        let prompts: Vec<Vec<u32>> = questions
            .iter()
            .map(|q| models.tokenizer().encode(&q.question, true).unwrap())
            .collect();
        let rollouts =
            seekmath_rl::rollout::RolloutSampler::sample(sampler, &prompts, 32, &config.rollout, 1000 + step as u64)
                .unwrap();
        let refs: Vec<&[u32]> = rollouts.iter().map(|r| prompts[r.prompt_index].as_slice()).collect();
        let steps = scorer.score_steps(&refs, &rollouts).unwrap();
        let all: Vec<f64> = steps.iter().flatten().map(|s| s.reward).collect();
        all.iter().sum::<f64>() / all.len().max(1) as f64
    };
    let before = measure(&mut sampler, 0);
    for _ in 0..10 {
        let (m, _) = trainer
            .step_with_process(&models, &mut sampler, &EvenLength, Some(&scorer), &questions)
            .unwrap();
        assert!(m.loss.is_finite() && m.kl >= 0.0);
    }
    let after = measure(&mut sampler, 1);
    assert!(after > before + 0.05, "mean step reward {before:.3} → {after:.3}");
}

#[test]
fn iterative_rl_resets_the_reference_and_replays_prm_data() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(&dir.path().join("iter"), &path);
    config.grpo.estimator = AdvantageEstimator::Process;
    let models = tiny_models(&path);
    let initial = param(&models, "model.norm.weight");
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let (train, _) = load_task(&config).unwrap();
    let mut section = rm_section(&dir.path().join("prm"));
    section.questions = 3;
    section.held_out_fraction = 0.34;
    let (rm, mut rm_trainer, history, held_out, _) =
        train_reward_model(&config, &section, &models, &mut sampler, &EvenLength, &train).unwrap();
    let history_len = history.len();
    let iterative = IterativeSection {
        iterations: 2,
        steps_per_iteration: 1,
        replay_fraction: 0.1,
    };
    let summary = run_iterative(
        &config,
        &iterative,
        &section,
        &models,
        &mut sampler,
        &EvenLength,
        &rm,
        &mut rm_trainer,
        history,
        &held_out,
        false,
    )
    .unwrap();
    assert_eq!(summary.iterations.len(), 2);
    let (first, second) = (&summary.iterations[0], &summary.iterations[1]);
    assert!(!first.reference_reset && second.reference_reset);
    assert!(first.new_rm_examples > 0);
    assert_eq!(first.replayed_rm_examples, (history_len as f64 * 0.1).ceil() as usize);
    assert!(first.rm_step_accuracy.is_some());
    assert_eq!((first.steps, second.steps), (1, 2));
    // The reference moved away from the initial policy (reset after iteration 1) and the policy moved on after it.
    let reference = models.reference.as_ref().unwrap().vs.variables()["model.norm.weight"].detach();
    assert!(max_abs_diff(&reference, &initial) > 0.0, "reference was never reset");
    assert!(max_abs_diff(&param(&models, "model.norm.weight"), &reference) > 0.0);
    let m = read_metrics(&dir.path().join("iter/metrics.jsonl")).unwrap();
    assert_eq!(m.iter().map(|r| r.step).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(dir.path().join("iter/reward_model/reward_model.json").is_file());
}

/// Runs one §5.2 method for `steps` steps and returns the per-step metrics and whether the policy moved.
fn run_method(
    method: Method,
    steps: usize,
    tweak: impl FnOnce(&mut GrpoConfig, &mut MethodSection),
) -> Option<(Vec<f64>, bool)> {
    let path = tiny_model()?;
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), &path);
    config.grpo.steps = steps;
    let mut section = MethodSection {
        name: method,
        offline_questions: 6,
        offline_samples: 4,
        batch_size: 64,
        ..Default::default()
    };
    tweak(&mut config, &mut section);
    let models = tiny_models(&path);
    let before = param(&models, "model.norm.weight");
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let summary = run_unified(&config, &section, &models, &mut sampler, &EvenLength, false).unwrap();
    assert_eq!(summary.steps, steps);
    assert!(summary.baseline_eval.is_some() && summary.final_eval.is_some());
    let m = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(m.len(), steps + 1, "one baseline record then one per step");
    assert!(dir.path().join("final/config.json").is_file());
    let losses: Vec<f64> = m.iter().skip(1).map(|r| r.loss).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let moved = max_abs_diff(&param(&models, "model.norm.weight"), &before) > 0.0;
    Some((losses, moved))
}

#[test]
fn sft_fits_its_data() {
    let Some((losses, moved)) = run_method(Method::Sft, 4, |_, _| {}) else {
        return;
    };
    assert!(moved);
    assert!(losses[3] < losses[0], "full-batch SFT loss must fall: {losses:?}");
}

#[test]
fn sft_reads_a_user_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sft.jsonl");
    std::fs::write(
        &file,
        "{\"question\": \"Once upon a time\", \"response\": \"there was a cat.\"}\nbad\n",
    )
    .unwrap();
    let Some((losses, moved)) = run_method(Method::Sft, 3, |_, m| m.sft_path = Some(file.clone())) else {
        return;
    };
    assert!(moved && losses[2] < losses[0], "{losses:?}");
}

#[test]
fn rft_trains_on_correct_offline_samples() {
    let Some((losses, moved)) = run_method(Method::Rft, 3, |_, _| {}) else {
        return;
    };
    assert!(moved);
    assert!(losses[2] < losses[0], "{losses:?}");
}

#[test]
fn online_rft_trains_on_correct_policy_samples() {
    let Some((_, moved)) = run_method(Method::OnlineRft, 2, |c, _| c.grpo.group_size = 8) else {
        return;
    };
    assert!(moved);
}

#[test]
fn dpo_lowers_its_loss_on_the_pairs() {
    let Some((losses, moved)) = run_method(Method::Dpo, 4, |_, m| m.dpo_beta = 0.5) else {
        return;
    };
    assert!(moved);
    // Step 1 starts at the reference: loss = ln 2 exactly; full-batch updates must lower it.
    assert!((losses[0] - std::f64::consts::LN_2).abs() < 1e-4, "{losses:?}");
    assert!(losses[3] < losses[0], "{losses:?}");
}

#[test]
fn ppo_updates_policy_and_critic() {
    let Some((_, moved)) = run_method(Method::Ppo, 2, |c, _| c.grpo.updates_per_stage = 2) else {
        return;
    };
    assert!(moved);
}

#[test]
fn grpo_through_the_unified_trainer() {
    let Some((_, moved)) = run_method(Method::Grpo, 2, |_, _| {}) else {
        return;
    };
    assert!(moved);
}

#[test]
fn orm_scores_outcomes_alone_and_mixed_with_the_verifier() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), &path);
    let models = tiny_models(&path);
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let (train, _) = load_task(&config).unwrap();
    let mut section = rm_section(&dir.path().join("orm"));
    section.kind = RewardModelKind::Outcome;
    let (orm, _, train_set, _, report) =
        train_reward_model(&config, &section, &models, &mut sampler, &EvenLength, &train).unwrap();
    // An ORM example is scored once, at the completion's last token, and costs no step rollouts.
    assert_eq!(report.completions, 0);
    assert!(train_set.iter().all(|e| e.positions == vec![e.ids.len() - 1]));
    config.reward_model.outcome = Some(section.out.clone());
    config.reward_model.verifier_weight = 0.5;
    config.reward_model.outcome_weight = 1.0;
    let reward = seekmath_rl::reward_model::configured_outcome_reward(&config, Device::Cpu).unwrap();
    let inputs = [
        RewardInput {
            question: "Ann has 3 apples. She finds 4 more. How many apples does Ann have now?",
            completion: "The answer is 7.",
            reference: "7",
            truncated: false,
        },
        RewardInput {
            question: "Ben has 2 cards. How many cards does Ben have now?",
            completion: "The answer is 5.",
            reference: "2",
            truncated: false,
        },
    ];
    let scored = reward.score_batch(&inputs);
    // The ORM's probability for the same text, computed directly.
    let tok = orm.tokenizer();
    let probs: Vec<f64> = inputs
        .iter()
        .map(|i| {
            let prompt = seekmath_rl::trainer::encode_prompt(&config, tok, i.question).unwrap();
            let completion = tok.encode(i.completion, false).unwrap();
            let e = orm.scoring_example(&prompt, &completion, i.question).unwrap().unwrap();
            orm.predict(&[e], 1).unwrap()[0][0]
        })
        .collect();
    assert!(
        (scored[0].reward - (0.5 + probs[0])).abs() < 1e-6,
        "{scored:?} {probs:?}"
    );
    assert!((scored[1].reward - probs[1]).abs() < 1e-6, "{scored:?} {probs:?}");
    assert_eq!((scored[0].correct, scored[1].correct), (Some(true), Some(false)));
}

/// A run stopped after 2 steps and resumed to 3 ends with the same weights as an uninterrupted 3-step run.
fn resume_matches_uninterrupted(method: Method) {
    let Some(path) = tiny_model() else { return };
    let run = |dir: &Path, steps: usize, resume: bool, models: &Models| {
        let mut config = tiny_config(dir, &path);
        config.grpo.steps = steps;
        config.output.checkpoint_every = 1;
        let section = MethodSection {
            name: method,
            offline_questions: 6,
            offline_samples: 4,
            batch_size: 3,
            ..Default::default()
        };
        let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
        run_unified(&config, &section, models, &mut sampler, &EvenLength, resume).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let straight = tiny_models(&path);
    run(a.path(), 3, false, &straight);
    {
        let first = tiny_models(&path);
        run(b.path(), 2, false, &first);
    }
    let resumed = tiny_models(&path);
    let summary = run(b.path(), 3, true, &resumed);
    assert_eq!(summary.steps, 3);
    let m = read_metrics(&b.path().join("metrics.jsonl")).unwrap();
    assert_eq!(m.iter().map(|r| r.step).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for (name, w) in straight.policy.vs.variables() {
        let d = max_abs_diff(&w, &resumed.policy.vs.variables()[&name]);
        assert!(d < 1e-6, "{method:?}: {name} differs by {d} after resume");
    }
}

#[test]
fn dpo_resumes_exactly() {
    resume_matches_uninterrupted(Method::Dpo);
}

#[test]
fn ppo_resumes_exactly() {
    resume_matches_uninterrupted(Method::Ppo);
}

#[test]
fn iterative_rl_resumes_after_a_completed_iteration() {
    let Some(path) = tiny_model() else { return };
    let iterative = IterativeSection {
        iterations: 2,
        steps_per_iteration: 1,
        replay_fraction: 0.5,
    };
    // Trains the initial PRM and runs Algorithm 1 in `dir`; returns the models and the PRM.
    let run = |dir: &Path, resume: bool| {
        let mut config = tiny_config(&dir.join("iter"), &path);
        config.grpo.estimator = AdvantageEstimator::Process;
        let models = tiny_models(&path);
        let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
        let (train, _) = load_task(&config).unwrap();
        let mut section = rm_section(&dir.join("prm"));
        section.questions = 3;
        let (rm, mut rm_trainer, history, held_out, _) =
            train_reward_model(&config, &section, &models, &mut sampler, &EvenLength, &train).unwrap();
        let summary = run_iterative(
            &config,
            &iterative,
            &section,
            &models,
            &mut sampler,
            &EvenLength,
            &rm,
            &mut rm_trainer,
            history,
            &held_out,
            resume,
        )
        .unwrap();
        (models, rm, summary)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, straight_rm, _) = run(a.path(), false);
    run(b.path(), false);
    // Pretend the run died during iteration 2.
    std::fs::remove_dir_all(b.path().join("iter/checkpoints/iteration-2")).unwrap();
    let (resumed, resumed_rm, summary) = run(b.path(), true);
    assert_eq!(summary.iterations.len(), 2);
    assert!(summary.iterations[1].reference_reset);
    let m = read_metrics(&b.path().join("iter/metrics.jsonl")).unwrap();
    assert_eq!(m.iter().map(|r| r.step).collect::<Vec<_>>(), vec![0, 1, 2]);
    for (name, w) in straight.policy.vs.variables() {
        let d = max_abs_diff(&w, &resumed.policy.vs.variables()[&name]);
        assert!(d < 1e-6, "policy {name} differs by {d} after resume");
    }
    for (name, w) in straight_rm.model.vs.variables() {
        let d = max_abs_diff(&w, &resumed_rm.model.vs.variables()[&name]);
        assert!(d < 1e-6, "PRM {name} differs by {d} after resume");
    }
}

/// Returns a fixed sample on the first call and scripted continuations (" dog" = correct, " cat" = wrong) after.
struct ScriptedSampler<'a> {
    tokenizer: &'a seekmath_model::Tokenizer,
    calls: usize,
}

impl seekmath_rl::rollout::RolloutSampler for ScriptedSampler<'_> {
    fn sample(
        &mut self,
        prompts: &[Vec<u32>],
        n: usize,
        _params: &seekmath_rl::rollout::RolloutParams,
        _seed: u64,
    ) -> anyhow::Result<Vec<Rollout>> {
        self.calls += 1;
        let mut out = Vec::new();
        for (p, _) in prompts.iter().enumerate() {
            for k in 0..n {
                let text = match (self.calls, p, k) {
                    (1, _, _) => " the big red ball",
                    (_, 2, _) | (_, _, 1) => " cat",
                    _ => " dog",
                };
                out.push(Rollout {
                    prompt_index: p,
                    tokens: self.tokenizer.encode(text, false)?,
                    text: text.into(),
                    truncated: false,
                });
            }
        }
        Ok(out)
    }
}

/// "Correct" iff the text mentions a dog.
struct MentionsDog;

impl RewardFunction for MentionsDog {
    fn name(&self) -> &str {
        "dog"
    }
    fn score(&self, input: &RewardInput) -> RewardOutput {
        let correct = input.completion.contains("dog");
        RewardOutput {
            reward: f64::from(u8::from(correct)),
            correct: Some(correct),
        }
    }
}

#[test]
fn math_shepherd_hard_and_soft_labels_by_hand() {
    let Some(path) = tiny_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), &path);
    let model = load(&path, Device::Cpu, Kind::Float).unwrap();
    let tok = model.tokenizer.as_ref().unwrap();
    let problems = vec![Problem {
        question: "Once upon a time".into(),
        answer: String::new(),
    }];
    // Steps are words: "the", "big", "red", "ball". Continuations from steps 1 and 2: (dog, cat); from step 3:
    // (cat, cat). The sample itself never mentions a dog, so its last step is wrong.
    let want = [
        (seekmath_rl::shepherd::StepLabel::Hard, vec![1.0, 1.0, 0.0, 0.0]),
        (seekmath_rl::shepherd::StepLabel::Soft, vec![0.5, 0.5, 0.0, 0.0]),
    ];
    for (label, expected) in want {
        let options = ShepherdOptions {
            samples_per_question: 1,
            rollouts_per_step: 2,
            label,
            boundary: StepBoundary::Separator(" ".into()),
            max_steps: 0,
            ..Default::default()
        };
        let mut sampler = ScriptedSampler {
            tokenizer: tok,
            calls: 0,
        };
        let data =
            seekmath_rl::shepherd::shepherd_label(&config, tok, &mut sampler, &MentionsDog, &problems, &options, 0)
                .unwrap();
        assert_eq!(data.completions, 6);
        assert_eq!(data.process.len(), 1);
        assert_eq!(data.process[0].labels, expected, "{label:?}");
        assert_eq!(data.outcome[0].labels, vec![0.0]);
        assert_eq!(data.sample_accuracy, 0.0);
    }
}
