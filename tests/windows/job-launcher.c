/* Test harness: runs a command inside a job object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, as
 * terminals and IDE launchers do, then exits with the command's code, which closes the job and
 * kills whatever is still in it. `--no-breakaway` leaves out JOB_OBJECT_LIMIT_BREAKAWAY_OK, so
 * CREATE_BREAKAWAY_FROM_JOB is refused inside it.
 * Usage: job-launcher.exe [--no-breakaway] PROGRAM [ARGS...]  (stdio is inherited) */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

int wmain(int argc, wchar_t **argv) {
    int first = 1;
    DWORD limits = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_BREAKAWAY_OK;
    if (argc > 1 && wcscmp(argv[1], L"--no-breakaway") == 0) {
        limits = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        first = 2;
    }
    if (first >= argc) {
        fwprintf(stderr, L"usage: job-launcher [--no-breakaway] PROGRAM [ARGS...]\n");
        return 2;
    }
    /* The command line after our own arguments, as we were given it. */
    wchar_t *line = GetCommandLineW();
    int skip = first;
    int quoted = 0;
    while (*line && skip > 0) {
        if (*line == L'"') quoted = !quoted;
        else if ((*line == L' ' || *line == L'\t') && !quoted) {
            while (*line == L' ' || *line == L'\t') line++;
            skip--;
            continue;
        }
        line++;
    }
    HANDLE job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
    ZeroMemory(&info, sizeof info);
    info.BasicLimitInformation.LimitFlags = limits;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &info, sizeof info)) {
        fwprintf(stderr, L"job-launcher: job object: error %lu\n", GetLastError());
        return 3;
    }
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    if (!CreateProcessW(NULL, line, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
        fwprintf(stderr, L"job-launcher: cannot start %ls: error %lu\n", line, GetLastError());
        return 4;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        fwprintf(stderr, L"job-launcher: AssignProcessToJobObject: error %lu\n", GetLastError());
        TerminateProcess(pi.hProcess, 1);
        return 5;
    }
    fwprintf(stderr, L"job-launcher: pid %lu in job\n", pi.dwProcessId);
    fflush(stderr);
    ResumeThread(pi.hThread);
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    fwprintf(stderr, L"job-launcher: child exited %lu; closing the job\n", code);
    CloseHandle(job);
    return (int)code;
}
