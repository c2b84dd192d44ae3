//! The lesson player as JavaScript sees it: `View` methods to start, turn and stop a lesson
//! and to read what the narration panel shows ([`crate::lesson`] plays it).

use crate::app::View;
use crate::lesson::{LessonPlay, Phase};
use crate::{Cluster, page_error, scenario, to_js};
use ringstore_core::sim::script;
use serde::Serialize;
use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};

#[wasm_bindgen]
impl View {
    /// Starts lesson `name` on `cluster` (which must have been built from it).
    #[wasm_bindgen(js_name = startScenario)]
    pub fn start_scenario(&mut self, cluster: &Cluster, name: &str) -> Result<(), JsError> {
        let info = scenario::find(name).ok_or_else(|| JsError::new("no such lesson"))?;
        let lesson =
            scenario::lesson(info).map_err(|e| page_error(crate::cluster::PageError(e)))?;
        self.play(cluster, info.name, lesson);
        Ok(())
    }

    /// Starts a lesson from its text (a teacher's file), called `name` on the page, on
    /// `cluster` (which must have been built from it: `new Cluster({lesson: text})`). A bad
    /// lesson is refused with its errors, one per line (`line N: ...`).
    #[wasm_bindgen(js_name = startLesson)]
    pub fn start_lesson(
        &mut self,
        cluster: &Cluster,
        name: &str,
        text: &str,
    ) -> Result<(), JsError> {
        let lesson = script::parse_lesson(text).map_err(|_| {
            let errors: Vec<String> = script::lesson_errors(text)
                .iter()
                .map(|e| e.to_string())
                .collect();
            JsError::new(&errors.join("\n"))
        })?;
        let name: String = name.chars().take(80).collect();
        self.play(cluster, &name, lesson);
        Ok(())
    }

    fn play(&mut self, cluster: &Cluster, name: &str, lesson: script::Lesson) {
        self.attach(cluster);
        let sim = cluster.inner.sim();
        self.ui.subtitle.clear();
        self.ui.names = lesson
            .names
            .iter()
            .map(|(id, n)| (id.0, n.clone()))
            .collect();
        let hop = self.lesson.as_ref().map(|l| l.hop_real_ms);
        let mut play = LessonPlay::new(name, lesson, sim.now().0, sim.log().total());
        play.hop_real_ms = hop.unwrap_or(self.hop_real_ms);
        play.autoplay = self.autoplay;
        self.lesson = Some(play);
    }

    /// Goes back one page of the lesson: on `fresh`, a cluster just built from the same
    /// lesson, plays at once up to the prose before the one shown (the simulator is
    /// deterministic, so the cluster is exactly as it was then), keeping the reader's
    /// answers; `fresh` becomes the view's cluster. On the first page, the lesson starts
    /// over. `false` with no lesson.
    #[wasm_bindgen(js_name = lessonBack)]
    pub fn lesson_back(&mut self, fresh: &mut Cluster) -> bool {
        let Some(old) = self.lesson.take() else {
            return false;
        };
        // The prose shown: this step's once it ran, else the step before's.
        let shown = match old.phase {
            Phase::Reading | Phase::Done => Some(old.step),
            Phase::Running | Phase::Asking => old.step.checked_sub(1),
        };
        let target = shown.and_then(|s| s.checked_sub(1));
        self.play(fresh, &old.name, old.lesson.clone());
        if let Some(p) = self.lesson.as_mut() {
            p.picks = old.picks;
            p.hop_real_ms = old.hop_real_ms;
            if let Some(target) = target {
                let sim = fresh.inner.sim_mut();
                p.skip_to(sim, target);
                p.script
                    .push(("note".to_string(), format!("(back to step {})", target + 1)));
                self.player.sync_to(sim.now().0);
                fresh.inner.log_lesson(p.take_changes());
            }
        }
        true
    }

    /// Plays the lesson just started on `cluster` at once up to step `step`'s prose (1-based,
    /// clamped to the lesson's steps): a link to a step of a lesson (`&step=N`) opens there,
    /// exactly as a reader who turned the pages would see it. `false` with no lesson.
    #[wasm_bindgen(js_name = lessonSkipTo)]
    pub fn lesson_skip_to(&mut self, cluster: &mut Cluster, step: usize) -> bool {
        let Some(p) = self.lesson.as_mut() else {
            return false;
        };
        let sim = cluster.inner.sim_mut();
        p.skip_to(sim, step.saturating_sub(1));
        self.player.sync_to(sim.now().0);
        cluster.inner.log_lesson(p.take_changes());
        true
    }

    /// The reader picks answer `choice` (0-based) to the question shown; `false` if there is
    /// no such choice or it was answered already.
    #[wasm_bindgen(js_name = chooseAnswer)]
    pub fn choose_answer(&mut self, choice: usize) -> bool {
        self.lesson.as_mut().is_some_and(|p| p.choose(choice))
    }

    /// Stops the lesson (the cluster stays as it is, in free play).
    #[wasm_bindgen(js_name = stopScenario)]
    pub fn stop_scenario(&mut self) {
        self.lesson = None;
        self.off_script = None;
        self.ui.subtitle.clear();
        self.ui.names.clear();
    }

    /// The reader asks for the next step (or for the question's step to run).
    #[wasm_bindgen(js_name = nextStep)]
    pub fn next_step(&mut self) {
        let now = crate::app::now_real();
        if let Some(p) = self.lesson.as_mut() {
            p.next(now);
        }
    }

    /// Turns auto-play on or off: steps follow each other after a reading time.
    #[wasm_bindgen(js_name = setAutoPlay)]
    pub fn set_auto_play(&mut self, on: bool) {
        self.autoplay = on;
        if let Some(p) = self.lesson.as_mut() {
            p.autoplay = on;
        }
    }

    /// Sets how many real ms the fastest message hop takes in a lesson (700 by default;
    /// tests shorten it). Clamped to 1..=5000.
    #[wasm_bindgen(js_name = setLessonPace)]
    pub fn set_lesson_pace(&mut self, hop_real_ms: f64) {
        let hop = if hop_real_ms.is_finite() {
            hop_real_ms.clamp(1.0, 5_000.0)
        } else {
            crate::lesson::HOP_REAL_MS
        };
        self.hop_real_ms = hop;
        if let Some(p) = self.lesson.as_mut() {
            p.hop_real_ms = hop;
        }
    }

    /// The reader changed the lesson's run (`reason`: what they did): the narration no longer
    /// applies. The cluster goes on in free play; the page offers to restart the lesson.
    #[wasm_bindgen(js_name = offScript)]
    pub fn off_script(&mut self, reason: &str) {
        if self.lesson.is_some() && self.off_script.is_none() {
            self.off_script = Some(reason.chars().take(120).collect());
            self.player.playing = true;
        }
    }

    /// What the narration panel shows: `{name, title, section, step, total, phase, say, ask:
    /// {question, answer}?, choices: [text], picked: {index, right, why}?, score: {right,
    /// asked}, script: [[class, text]] from index `from`, scriptTotal, note, offScript,
    /// autoplay, missed}` (`choices`: the answers to pick from while a question with choices
    /// is shown; `picked`: the reader's answer to this step's question; `score`: questions
    /// with choices answered right, of those the lesson asks); `undefined` with no lesson.
    #[wasm_bindgen(js_name = scenarioState)]
    pub fn scenario_state(&self, from: usize) -> Result<JsValue, JsError> {
        let Some(p) = &self.lesson else {
            return Ok(JsValue::UNDEFINED);
        };
        #[derive(Serialize)]
        struct Ask<'a> {
            question: &'a str,
            answer: &'a str,
        }
        #[derive(Serialize)]
        struct Picked<'a> {
            index: usize,
            right: bool,
            why: &'a str,
        }
        #[derive(Serialize)]
        struct Score {
            right: usize,
            asked: usize,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            name: &'a str,
            title: &'a str,
            section: &'a str,
            step: usize,
            total: usize,
            phase: &'static str,
            say: &'a str,
            ask: Option<Ask<'a>>,
            choices: Vec<&'a str>,
            picked: Option<Picked<'a>>,
            score: Score,
            script: &'a [(String, String)],
            script_total: usize,
            note: Option<&'a str>,
            off_script: Option<&'a str>,
            autoplay: bool,
            missed: Option<&'a str>,
        }
        to_js(&Out {
            name: &p.name,
            title: &p.lesson.title,
            section: &p.lesson.section,
            step: (p.step + 1).min(p.lesson.steps.len()),
            total: p.lesson.steps.len(),
            phase: p.phase.name(),
            say: p.say(),
            ask: p.ask().map(|(q, a)| Ask {
                question: q,
                answer: a,
            }),
            choices: p.choices().iter().map(|c| c.text.as_str()).collect(),
            picked: p.picked().map(|(index, c)| Picked {
                index,
                right: c.right,
                why: &c.why,
            }),
            score: {
                let (right, asked) = p.score();
                Score { right, asked }
            },
            script: p.script.get(from..).unwrap_or(&[]),
            script_total: p.script.len(),
            note: p.note.as_deref(),
            off_script: self.off_script.as_deref(),
            autoplay: p.autoplay,
            missed: p.missed.as_deref(),
        })
    }

    /// Whether a lesson is on and waits for the reader (its step's prose or question shown).
    #[wasm_bindgen(js_name = lessonWaiting)]
    pub fn lesson_waiting(&self) -> bool {
        self.lesson
            .as_ref()
            .is_some_and(|p| matches!(p.phase, Phase::Reading | Phase::Asking))
    }
}
