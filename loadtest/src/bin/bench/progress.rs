//! One line per finished step, with a running count and a rough time left
//! (the mean step so far times the steps to go), for whoever watches `make bench`.

use std::time::{Duration, Instant};

pub struct Progress {
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self { total, done: 0, started: Instant::now() }
    }

    /// Records a finished step and prints `[done/total] what · elapsed · ~left`.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        let elapsed = self.started.elapsed();
        eprintln!(
            "bench: [{}/{}] {what} · {} elapsed · ~{} left",
            self.done,
            self.total,
            seconds(elapsed),
            seconds(self.left(elapsed))
        );
    }

    fn left(&self, elapsed: Duration) -> Duration {
        if self.done == 0 {
            return Duration::ZERO;
        }
        elapsed / self.done as u32 * self.total.saturating_sub(self.done) as u32
    }
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 { format!("{}m{:02}s", secs / 60, secs % 60) } else { format!("{secs}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_mean_step_times_the_steps_to_go() {
        let mut progress = Progress::new(4);
        assert_eq!(progress.left(Duration::from_secs(10)), Duration::ZERO);
        progress.done = 1;
        assert_eq!(progress.left(Duration::from_secs(10)), Duration::from_secs(30));
        progress.done = 4;
        assert_eq!(progress.left(Duration::from_secs(40)), Duration::ZERO);
        assert_eq!(seconds(Duration::from_secs(75)), "1m15s");
    }
}
