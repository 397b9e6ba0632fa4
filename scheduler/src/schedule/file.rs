//! Reading and checking the schedule file.

use super::{placeholders, timeout, Entry, Job, Missed, Overlap, Schedule, ScheduleError, When};
use serde::Deserialize;
use std::{collections::HashMap, ops::Range, path::Path};
use toml::Spanned;

/// The time zone of an entry that names none: the shop's (its business day is Korea's).
pub const DEFAULT_TIMEZONE: &str = "Asia/Seoul";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "entry")]
    entries: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    cron: Spanned<String>,
    timezone: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    #[serde(default)]
    overlap: Overlap,
    #[serde(default)]
    missed: Missed,
    timeout: Spanned<String>,
}

pub fn load(path: &Path) -> Result<Schedule, ScheduleError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ScheduleError {
        path: shown.clone(),
        line: 0,
        reason: format!("cannot read it: {error}"),
    })?;
    parse(&text, &shown)
}

pub fn parse(text: &str, path: &str) -> Result<Schedule, ScheduleError> {
    let error_at = |span: Option<Range<usize>>, reason: String| ScheduleError {
        path: path.to_owned(),
        line: span.map_or(0, |span| line_of(text, span.start)),
        reason,
    };
    let raw: RawFile = toml::from_str(text).map_err(|error| error_at(error.span(), error.message().to_owned()))?;
    if raw.entries.is_empty() {
        return Err(error_at(None, "has no [[entry]]; a scheduler with nothing to do is a mistake".into()));
    }
    let mut lines_by_name: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.entries.len());
    for spanned in raw.entries {
        let entry_span = spanned.span();
        let entry = check_entry(spanned.into_inner(), entry_span.clone())
            .map_err(|(span, reason)| error_at(Some(span), reason))?;
        let line = line_of(text, entry_span.start);
        if let Some(first) = lines_by_name.insert(entry.name.clone(), line) {
            return Err(error_at(
                Some(entry_span),
                format!("entry name {:?} is already used on line {first}", entry.name),
            ));
        }
        entries.push(entry);
    }
    Ok(Schedule { entries })
}

type Problem = (Range<usize>, String);

fn check_entry(raw: RawEntry, entry_span: Range<usize>) -> Result<Entry, Problem> {
    let name = raw.name.get_ref().trim();
    let plain_name = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !plain_name {
        return Err((raw.name.span(), format!("name {name:?}: use 1-64 letters, digits, '-', '_' or '.'")));
    }
    let zone = match &raw.timezone {
        None => DEFAULT_TIMEZONE.parse().expect("the default time zone is known"),
        Some(zone) => zone
            .get_ref()
            .parse()
            .map_err(|_| (zone.span(), format!("timezone {:?} is not an IANA time zone name", zone.get_ref())))?,
    };
    let when = When::parse(raw.cron.get_ref(), zone)
        .map_err(|reason| (raw.cron.span(), format!("cron {:?}: {reason}", raw.cron.get_ref())))?;
    let job = match (raw.command, raw.program) {
        (Some(command), None) => Job::Batch(check_command(command)?),
        (None, Some(program)) if Path::new(program.get_ref()).is_absolute() => Job::Program(program.into_inner()),
        (None, Some(program)) => return Err((program.span(), "program must be an absolute path".into())),
        _ => {
            let reason = "give exactly one of command (a settle-batch subcommand) or program (an absolute path)";
            return Err((entry_span, format!("entry {name:?}: {reason}")));
        }
    };
    for arg in &raw.args {
        placeholders::check(arg.get_ref()).map_err(|reason| (arg.span(), reason))?;
    }
    let timeout =
        timeout::parse(raw.timeout.get_ref()).map_err(|reason| (raw.timeout.span(), format!("timeout {reason}")))?;
    Ok(Entry {
        name: name.to_owned(),
        cron: raw.cron.get_ref().trim().to_owned(),
        when,
        job,
        args: raw.args.into_iter().map(Spanned::into_inner).collect(),
        overlap: raw.overlap,
        missed: raw.missed,
        timeout,
    })
}

fn check_command(command: Spanned<String>) -> Result<String, Problem> {
    let plain = !command.get_ref().is_empty() && command.get_ref().chars().all(|c| c.is_ascii_lowercase() || c == '-');
    if plain {
        Ok(command.into_inner())
    } else {
        Err((command.span(), format!("command {:?} is not a settle-batch subcommand name", command.get_ref())))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&byte| byte == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[entry]]
name = "reconcile-points"
cron = "0 30 0 * * *"
command = "reconcile-points"
args = ["--date", "{yesterday}", "--fix"]
timeout = "2h"

[[entry]]
name = "hourly-report"
cron = "0 * * * *"
timezone = "Europe/Berlin"
program = "/usr/bin/true"
overlap = "allow"
missed = "skip"
timeout = "5m"
"#;

    fn problem(text: &str) -> ScheduleError {
        parse(text, "schedule.toml").expect_err("the file should be rejected")
    }

    #[test]
    fn a_good_file_reads_with_its_defaults() {
        let schedule = parse(GOOD, "schedule.toml").expect("valid");
        let first = &schedule.entries[0];
        assert_eq!(first.when.zone, chrono_tz::Asia::Seoul);
        assert_eq!((first.overlap, first.missed), (Overlap::Skip, Missed::RunOnce));
        assert_eq!(first.job, Job::Batch("reconcile-points".into()));
        assert_eq!(first.timeout, std::time::Duration::from_secs(7_200));
        assert_eq!(first.describe(), "settle-batch reconcile-points --date {yesterday} --fix");
        let second = schedule.entry("hourly-report").expect("by name");
        assert_eq!((second.overlap, second.missed), (Overlap::Allow, Missed::Skip));
        assert_eq!(second.when.zone, chrono_tz::Europe::Berlin);
    }

    #[test]
    fn each_mistake_is_reported_with_its_line_and_reason() {
        let cases: [(&str, &str, usize, &str); 10] = [
            ("cron", r#"cron = "0 30 0 * * *""#, 4, "0 61 0 * * *"),
            ("timezone", r#"args = ["--date", "{yesterday}", "--fix"]"#, 6, "timezone = \"Asia/Busan\"\nargs = []"),
            ("placeholder", r#"args = ["--date", "{yesterday}", "--fix"]"#, 6, "args = [\"{today}\"]"),
            ("timeout", r#"timeout = "2h""#, 7, "timeout = \"2 hours\""),
            ("unknown field", r#"timeout = "2h""#, 8, "timeout = \"2h\"\nretries = 3"),
            ("overlap value", r#"timeout = "2h""#, 8, "timeout = \"2h\"\noverlap = \"queue\""),
            ("both jobs", r#"command = "reconcile-points""#, 2, "command = \"x\"\nprogram = \"/bin/true\""),
            ("relative program", r#"command = "reconcile-points""#, 5, "program = \"bin/true\""),
            ("weekday number", r#"cron = "0 30 0 * * *""#, 4, "cron = \"0 0 0 * * 1\""),
            ("syntax", r#"timeout = "2h""#, 7, "timeout = \"2h"),
        ];
        for (what, original, line, replacement) in cases {
            let replacement =
                if replacement.contains('=') { replacement.to_owned() } else { format!("cron = \"{replacement}\"") };
            let error = problem(&GOOD.replacen(original, &replacement, 1));
            assert_eq!((what, error.line), (what, line), "{what}: {error}");
            assert!(error.to_string().starts_with(&format!("schedule.toml:{line}: ")), "{what}: {error}");
        }
    }

    #[test]
    fn duplicate_names_and_empty_files_are_rejected() {
        let duplicate = GOOD.replace("name = \"hourly-report\"", "name = \"reconcile-points\"");
        let error = problem(&duplicate);
        assert_eq!(error.line, 9);
        assert!(error.reason.contains("already used on line 2"), "{error}");
        assert!(problem("# nothing\n").reason.contains("no [[entry]]"));
        assert!(problem(&GOOD.replace("name = \"hourly-report\"", "name = \"hourly report\"")).reason.contains("name"));
    }
}
