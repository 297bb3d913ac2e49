//! When each source lands under `land --watch`: on its own cron `schedule` from
//! `catalog/sources.yml`, else every `--interval`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A source's cron schedule, in UTC: five fields (minute hour day-of-month month day-of-week)
/// as in crontab, or six with seconds first. Checked when the declaration loads.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CronSchedule {
    text: String,
    /// Boxed: a parsed pattern is large next to the declaration's other fields.
    cron: Box<croner::Cron>,
}

impl CronSchedule {
    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let cron = text
            .parse::<croner::Cron>()
            .map_err(|e| format!("schedule {text:?} is not a cron expression: {e}"))?;
        Ok(Self {
            text,
            cron: Box::new(cron),
        })
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How one source is triggered.
#[derive(Debug, Clone)]
enum Trigger {
    Every(Duration),
    Cron(CronSchedule),
}

#[derive(Debug)]
struct Entry {
    source: String,
    trigger: Trigger,
    next: DateTime<Utc>,
}

/// The next landing time of every watched source.
#[derive(Debug)]
pub struct Timetable {
    entries: Vec<Entry>,
}

impl Timetable {
    /// Sources without a schedule are due at once, then every `interval`; scheduled ones at
    /// their next occurrence (a schedule that never fires again leaves its source idle).
    pub fn new<'a>(
        sources: impl IntoIterator<Item = (&'a str, Option<&'a CronSchedule>)>,
        interval: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        let entries = sources
            .into_iter()
            .filter_map(|(source, schedule)| {
                let trigger = match schedule {
                    Some(s) => Trigger::Cron(s.clone()),
                    None => Trigger::Every(interval),
                };
                let next = match &trigger {
                    Trigger::Every(_) => now,
                    Trigger::Cron(s) => s.next_after(now)?,
                };
                Some(Entry {
                    source: source.to_string(),
                    trigger,
                    next,
                })
            })
            .collect();
        Self { entries }
    }

    /// The sources due at `now`, each moved on to its next time after `now` (runs missed while
    /// a long batch went on are not made up: one landing catches up with all of them).
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let mut due = Vec::new();
        self.entries.retain_mut(|entry| {
            if entry.next > now {
                return true;
            }
            due.push(entry.source.clone());
            let next = match &entry.trigger {
                Trigger::Every(interval) => chrono::Duration::from_std(*interval)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d)),
                Trigger::Cron(schedule) => schedule.next_after(now),
            };
            match next {
                Some(next) => {
                    entry.next = next;
                    true
                }
                None => false,
            }
        });
        due
    }

    /// When the next source is due; `None` once no source will ever be due again.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().map(|e| e.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn schedule(text: &str) -> CronSchedule {
        CronSchedule::try_from(text.to_string()).unwrap()
    }

    #[test]
    fn five_and_six_field_expressions() {
        let hourly = schedule("15 * * * *");
        assert_eq!(
            hourly.next_after(at("2026-12-05T10:20:00Z")),
            Some(at("2026-12-05T11:15:00Z"))
        );
        let every_ten_seconds = schedule("*/10 * * * * *");
        assert_eq!(
            every_ten_seconds.next_after(at("2026-12-05T10:20:03Z")),
            Some(at("2026-12-05T10:20:10Z"))
        );
        let err = CronSchedule::try_from("every hour".to_string()).unwrap_err();
        assert!(err.contains("every hour"), "{err}");
    }

    #[test]
    fn interval_sources_start_at_once_and_cron_sources_on_time() {
        let nightly = schedule("0 2 * * *");
        let now = at("2026-12-05T10:00:00Z");
        let mut table = Timetable::new(
            [("files", None), ("crm", Some(&nightly))],
            Duration::from_secs(30),
            now,
        );
        assert_eq!(table.take_due(now), vec!["files"]);
        assert_eq!(table.next_due(), Some(at("2026-12-05T10:00:30Z")));
        assert!(table.take_due(at("2026-12-05T10:00:29Z")).is_empty());
        // A long pause catches up with one landing, not one per missed tick.
        let late = at("2026-12-06T02:00:05Z");
        assert_eq!(table.take_due(late), vec!["files", "crm"]);
        assert_eq!(table.next_due(), Some(at("2026-12-06T02:00:35Z")));
    }
}
