use std::process::ExitCode;

/// Process exit codes. Bad arguments exit 2 (clap's own convention, kept for every argument error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    /// Arguments that parse but make no sense here (e.g. a time zone PostgreSQL does not know).
    BadArguments,
    /// The same job for the same parameters has already completed; rerun with `--force`.
    AlreadyCompleted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::BadArguments => 2,
            ExitStatus::AlreadyCompleted => 3,
        }
    }
}

impl std::process::Termination for ExitStatus {
    fn report(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}
