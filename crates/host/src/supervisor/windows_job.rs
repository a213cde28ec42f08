//! Windows process control for supervised children: each child runs in a job object of its
//! own with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, so that its whole tree (`cmd.exe`, `npx`,
//! `node`) dies when the host closes the job or dies itself, however it dies; a stop sends
//! Ctrl-Break to the child's process group when the host shares its console, and ends with
//! `TerminateJobObject`.
//!
//! A child is created suspended and resumed only once it is in its job, so nothing it starts
//! escapes. The jobs are kept here by pid (the supervisor holds only a tokio `Child`).

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::Path;
use std::sync::OnceLock;

use parking_lot::Mutex;
use tokio::process::Command;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent, GetConsoleCP,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED, OpenProcess, OpenThread,
    PROCESS_SET_QUOTA, PROCESS_TERMINATE, ResumeThread, THREAD_SUSPEND_RESUME,
};

use super::windows_command::{self, LaunchArgs};

/// A job object handle; closing it kills what is left in the job.
struct Job(HANDLE);

// SAFETY: a job handle is a kernel handle, usable from any thread.
unsafe impl Send for Job {}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: we own the handle; KILL_ON_JOB_CLOSE ends the processes still in the job.
        unsafe { CloseHandle(self.0) };
    }
}

fn jobs() -> &'static Mutex<HashMap<u32, Job>> {
    static JOBS: OnceLock<Mutex<HashMap<u32, Job>>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

/// The command for `command args`: resolved through PATH and PATHEXT, batch files through
/// `%ComSpec%`, created suspended (see [`adopt`]) in a process group of its own, and without
/// a console window when the host has no console to share.
pub(super) fn command(command: &str, args: &[String]) -> Result<Command, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).collect();
    let pathext =
        std::env::var("PATHEXT").unwrap_or_else(|_| windows_command::DEFAULT_PATHEXT.into());
    let comspec =
        std::env::var("ComSpec").unwrap_or_else(|_| windows_command::DEFAULT_COMSPEC.into());
    let launch = windows_command::plan(
        command,
        args,
        &dirs,
        &pathext,
        Path::new(&comspec),
        |p: &Path| p.is_file(),
    )
    .map_err(|e| format!("cannot start `{command}`: {e}"))?;
    let mut cmd = Command::new(&launch.program);
    match launch.args {
        LaunchArgs::Plain(args) => {
            cmd.args(args);
        }
        LaunchArgs::Raw(line) => {
            cmd.raw_arg(line);
        }
    }
    // A host without a console (the detached daemon, the tray app) would give every console
    // child a new visible console window; with one, the child shares it and gets Ctrl-Break.
    let mut flags = CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED;
    if !host_has_console() {
        flags |= CREATE_NO_WINDOW;
    }
    cmd.creation_flags(flags);
    Ok(cmd)
}

/// Whether a stop can ask a child to end (Ctrl-Break) rather than end it at once.
pub(super) fn ctrl_break_possible() -> bool {
    host_has_console()
}

fn host_has_console() -> bool {
    // SAFETY: no arguments; 0 means "no console attached".
    unsafe { GetConsoleCP() != 0 }
}

/// Puts the suspended child `pid` in a new kill-on-close job, then resumes it. Without a job
/// (a parent job that forbids nesting, as on Windows 7 or Wine) the child still runs, and the
/// stop kills the process itself; an error only when it cannot be resumed.
pub(super) fn adopt(pid: u32) -> Result<(), String> {
    match new_job_with(pid) {
        Ok(job) => {
            jobs().lock().insert(pid, job);
        }
        Err(e) => {
            tracing::warn!(
                pid,
                "child not in a job object ({e}); it may outlive a killed host"
            )
        }
    }
    resume_threads(pid).map_err(|e| format!("cannot resume the child (pid {pid}): {e}"))
}

fn new_job_with(pid: u32) -> std::io::Result<Job> {
    // SAFETY: plain Win32 calls on handles we own; the info struct is fully initialised.
    unsafe {
        let handle = CreateJobObjectW(std::ptr::null(), std::ptr::null());
        if handle.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let job = Job(handle);
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        if SetInformationJobObject(
            job.0,
            JobObjectExtendedLimitInformation,
            &info as *const _ as *const c_void,
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let process = OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, 0, pid);
        if process.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let assigned = AssignProcessToJobObject(job.0, process);
        let error = std::io::Error::last_os_error();
        CloseHandle(process);
        if assigned == 0 {
            return Err(error);
        }
        Ok(job)
    }
}

/// Resumes every thread of `pid` (a process created suspended has one).
fn resume_threads(pid: u32) -> std::io::Result<()> {
    // SAFETY: a snapshot handle we close; THREADENTRY32 is sized before the first call.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(std::io::Error::last_os_error());
        }
        let mut entry: THREADENTRY32 = std::mem::zeroed();
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut resumed = 0;
        let mut more = Thread32First(snapshot, &mut entry) != 0;
        while more {
            if entry.th32OwnerProcessID == pid {
                let thread = OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID);
                if !thread.is_null() {
                    if ResumeThread(thread) != u32::MAX {
                        resumed += 1;
                    }
                    CloseHandle(thread);
                }
            }
            more = Thread32Next(snapshot, &mut entry) != 0;
        }
        CloseHandle(snapshot);
        if resumed == 0 {
            return Err(std::io::Error::other("no thread found"));
        }
        Ok(())
    }
}

/// Ctrl-Break to the child's process group; whether it could be sent (only a child that
/// shares the host's console can get it).
pub(super) fn ctrl_break(pid: u32) -> bool {
    // SAFETY: no pointers; a failure is reported by the return value.
    host_has_console() && unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) != 0 }
}

/// Ends everything in the child's job at once; false when it has none.
pub(super) fn terminate(pid: u32) -> bool {
    let Some(job) = jobs().lock().remove(&pid) else {
        return false;
    };
    // SAFETY: a job handle we own; Drop closes it afterwards.
    unsafe { TerminateJobObject(job.0, 1) };
    true
}

/// Closes the child's job once the child ended, which ends anything it left behind.
pub(super) fn release(pid: u32) {
    jobs().lock().remove(&pid);
}
