//! `strata land --watch`: landing as a long-running process. Each source lands on its own
//! schedule (or every interval), as one `land` of just that source, until a stop is asked for.

use std::time::Duration;

use chrono::Utc;

use super::schedule::Timetable;
use super::{LandError, LandOptions, LandReport, SourcesFile, land};
use crate::config::Config;
use crate::lake::Lake;
use crate::stop::Stop;

/// How the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped between batches, or after letting the batch at hand finish.
    Finished,
    /// A second stop request dropped the batch at hand: nothing of it was committed, and the
    /// next `land` removes what it had written.
    Abandoned,
    /// No selected source has a schedule that fires again.
    NothingScheduled,
}

/// The selected sources and when each lands next.
pub struct Watch<'a> {
    config: &'a Config,
    lake: &'a Lake,
    opts: &'a LandOptions,
    timetable: Timetable,
}

impl<'a> Watch<'a> {
    /// Reads the declaration and plans the first landings; a declaration that cannot be read
    /// (a bad schedule, an unknown selector) fails here, before anything runs.
    pub fn new(
        config: &'a Config,
        lake: &'a Lake,
        opts: &'a LandOptions,
        interval: Duration,
    ) -> Result<Self, LandError> {
        let declaration = SourcesFile::load(&config.project_path(&config.land.sources))?;
        let selected = declaration.select(&opts.selectors)?;
        let timetable = Timetable::new(
            selected
                .iter()
                .map(|(source, _)| (source.name.as_str(), source.schedule.as_ref())),
            interval,
            Utc::now(),
        );
        Ok(Self {
            config,
            lake,
            opts,
            timetable,
        })
    }

    /// Lands the sources as they come due, handing each landing's outcome to `on_landing`,
    /// until `stop`. A landing that fails (a source down, the lake unreachable) is reported
    /// and the watch goes on.
    pub async fn run(
        mut self,
        mut stop: Stop,
        mut on_landing: impl FnMut(&[String], Result<LandReport, LandError>),
    ) -> Stopped {
        loop {
            if stop.requested() {
                return Stopped::Finished;
            }
            let due = self.timetable.take_due(Utc::now());
            if !due.is_empty() {
                let batch = LandOptions {
                    selectors: narrow(&self.opts.selectors, &due),
                    ..self.opts.clone()
                };
                let mut abandon = stop.clone();
                tokio::select! {
                    outcome = land(self.config, self.lake, &batch) => on_landing(&due, outcome),
                    () = abandon.abandon_requested() => return Stopped::Abandoned,
                }
                continue;
            }
            let Some(next) = self.timetable.next_due() else {
                return Stopped::NothingScheduled;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.finish_requested() => return Stopped::Finished,
            }
        }
    }
}

/// The selectors that land the `due` sources: the user's own selectors of those sources
/// (which may name single tables), or the whole sources when the user selected none.
fn narrow(selectors: &[String], due: &[String]) -> Vec<String> {
    if selectors.is_empty() {
        return due.to_vec();
    }
    selectors
        .iter()
        .filter(|sel| {
            let source = sel.split_once('.').map_or(sel.as_str(), |(s, _)| s);
            due.iter().any(|d| d == source)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::narrow;

    #[test]
    fn due_sources_keep_the_users_table_selection() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(narrow(&[], &s(&["crm"])), s(&["crm"]));
        assert_eq!(
            narrow(
                &s(&["crm.customers", "files", "web"]),
                &s(&["crm", "files"])
            ),
            s(&["crm.customers", "files"])
        );
    }
}
