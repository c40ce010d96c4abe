//! How a load tells its visitor where it is: one line per stage updated in place on a
//! terminal, plain lines when the output goes to a file or a pipe, nothing in tests.

use std::io::Write;

pub struct Progress {
    style: Style,
    stage: &'static str,
    stage_number: usize,
    done: usize,
    total: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Terminal,
    Lines,
    Silent,
}

/// The stages of a load, for the `[n/N]` count.
const STAGES: usize = 4;

impl Progress {
    /// Progress on standard error: in place on a terminal, as lines otherwise.
    pub fn on_stderr() -> Self {
        use std::io::IsTerminal;
        Self::new(if std::io::stderr().is_terminal() {
            Style::Terminal
        } else {
            Style::Lines
        })
    }

    pub fn silent() -> Self {
        Self::new(Style::Silent)
    }

    fn new(style: Style) -> Self {
        Self {
            style,
            stage: "",
            stage_number: 0,
            done: 0,
            total: 0,
        }
    }

    pub fn stage(&mut self, stage: &'static str, total: usize) {
        self.finish_line();
        self.stage = stage;
        self.stage_number += 1;
        self.done = 0;
        self.total = total;
        if self.style == Style::Lines {
            eprintln!(
                "[{}/{STAGES}] {stage}: {} to load",
                self.stage_number,
                thousands(total)
            );
        }
        self.draw();
    }

    pub fn advance(&mut self, count: usize) {
        let before = self.done * 10 / self.total.max(1);
        self.done += count;
        match self.style {
            Style::Terminal => self.draw(),
            // A line every tenth, not every item.
            Style::Lines if self.done * 10 / self.total.max(1) > before => eprintln!(
                "[{}/{STAGES}] {}: {} of {}",
                self.stage_number,
                self.stage,
                thousands(self.done),
                thousands(self.total)
            ),
            _ => {}
        }
    }

    pub fn done(&mut self) {
        self.finish_line();
    }

    fn draw(&self) {
        if self.style != Style::Terminal {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let bar: String = (0..width)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mut stderr = std::io::stderr();
        let _ = write!(
            stderr,
            "\r[{}/{STAGES}] {:<10} [{bar}] {} / {}   ",
            self.stage_number,
            self.stage,
            thousands(self.done),
            thousands(self.total)
        );
        let _ = stderr.flush();
    }

    fn finish_line(&self) {
        if self.style == Style::Terminal && self.stage_number > 0 {
            eprintln!();
        }
    }
}

/// `12345` as `12,345`.
pub fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
