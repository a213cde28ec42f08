//! Signals: SIGINT (Windows: Ctrl-C, Ctrl-Break) is ignored from the first instant of `main`;
//! SIGTERM and SIGHUP (Windows: console close) ask for a clean end.

/// Ignores SIGINT before anything else runs, so that a Ctrl-C that Claude Code sends to its
/// whole process group never reaches the proxy's state. Call it first thing in `main`.
pub fn ignore_interrupt() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: SIG_IGN installs no handler code; nothing else runs yet.
        if let Err(e) = unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) } {
            eprintln!("mcp-session-proxy: cannot ignore SIGINT: {e}");
        }
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::System::Console::{
            CTRL_BREAK_EVENT, CTRL_C_EVENT, SetConsoleCtrlHandler,
        };
        /// Swallows Ctrl-C and Ctrl-Break until `Shutdown`'s listeners take over (handlers run
        /// last-registered first); console close and logoff go on to the default handler.
        unsafe extern "system" fn swallow(event: u32) -> i32 {
            i32::from(event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT)
        }
        // SAFETY: the handler is a plain function that touches no state.
        if unsafe { SetConsoleCtrlHandler(Some(swallow), 1) } == 0 {
            eprintln!(
                "mcp-session-proxy: cannot ignore Ctrl-C: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The termination signals, counted: the first asks for a clean end, a second for an end now.
pub struct Shutdown {
    count: usize,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(windows)]
    ctrl_break: Option<tokio::signal::windows::CtrlBreak>,
    #[cfg(windows)]
    close: Option<tokio::signal::windows::CtrlClose>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Shutdown {
                count: 0,
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows;
            // While these listeners exist, Ctrl-C and Ctrl-Break do not end the process.
            Shutdown {
                count: 0,
                ctrl_c: windows::ctrl_c().ok(),
                ctrl_break: windows::ctrl_break().ok(),
                close: windows::ctrl_close().ok(),
            }
        }
    }

    /// Waits for the next termination signal; returns how many have arrived.
    pub async fn recv(&mut self) -> usize {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.hup) => {}
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows::{CtrlBreak, CtrlC, CtrlClose};
            async fn ctrl_c(listener: &mut Option<CtrlC>) {
                match listener {
                    Some(l) => {
                        l.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            async fn ctrl_break(listener: &mut Option<CtrlBreak>) {
                match listener {
                    Some(l) => {
                        l.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            async fn ctrl_close(listener: &mut Option<CtrlClose>) {
                match listener {
                    Some(l) => {
                        l.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            loop {
                tokio::select! {
                    // Swallowed: while listening, Windows does not end us on Ctrl-C/Ctrl-Break.
                    _ = ctrl_c(&mut self.ctrl_c) => continue,
                    _ = ctrl_break(&mut self.ctrl_break) => continue,
                    _ = ctrl_close(&mut self.close) => break,
                }
            }
        }
        self.count += 1;
        self.count
    }
}
